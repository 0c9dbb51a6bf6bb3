package store

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// idEncoding spells ids in lower-case base32 without padding: safe in URLs,
// file names and room ids.
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random opaque id with a readable prefix ("usr_…"). 15
// random bytes (120 bits) make collisions impossible in practice.
func NewID(prefix string) string {
	var b [15]byte
	rand.Read(b[:])
	return prefix + "_" + strings.ToLower(idEncoding.EncodeToString(b[:]))
}
