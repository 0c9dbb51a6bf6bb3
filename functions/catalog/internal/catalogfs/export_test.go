package catalogfs

// SetMaxScan sets how many documents a listing of s filtered in memory
// reads before it gives up.
func SetMaxScan(s *Store, n int) { s.maxScan = n }
