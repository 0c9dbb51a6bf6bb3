package fsstore

import (
	"encoding/base64"
	"strings"
)

// DocID is the name of the document of a domain id: the id itself when it
// is plain, else "~" and the unpadded base64url of its bytes. An id is
// plain when it is not empty, is made of ASCII letters, digits, '-' and
// '_' only (as the ids of store.NewID are) and does not start with "__".
//
// Every result is a valid document name (Firestore's may not be empty,
// hold '/', be "." or "..", or match __.*__), whatever bytes id holds (up
// to 1,124 of them: names hold at most 1,500 bytes), and
// the mapping is one-to-one: a plain id never holds '~', so it cannot
// equal an encoded one, and base64 is one-to-one. The stored documents are
// named by it: changing it renames them.
func DocID(id string) string {
	if plain(id) {
		return id
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func plain(id string) bool {
	if id == "" || strings.HasPrefix(id, "__") {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
