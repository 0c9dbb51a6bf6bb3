package store

import "database/sql"

// Queued returns how many InTx calls wait for db's writer (for tests that
// need calls to be queued before they let the writer go).
func Queued(db *sql.DB) int {
	v, ok := writers.Load(db)
	if !ok {
		return 0
	}
	w := v.(*writer)
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}
