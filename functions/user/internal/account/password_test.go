package account

import (
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$") {
		t.Errorf("hash %q is not PHC argon2id with the expected parameters", h)
	}
	h2, _ := hashPassword("correct horse battery")
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
	}
	for _, tt := range tests {
		if got, err := checkPassword(tt.password, h); got != tt.want || err != nil {
			t.Errorf("checkPassword(%q) = %v, %v; want %v", tt.password, got, err, tt.want)
		}
	}
}

func TestCheckPasswordRefusesMalformedHashes(t *testing.T) {
	// A hash with OWASP's other setting still verifies (parameters are read
	// from the hash).
	old := "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + b64.EncodeToString(argon2.IDKey([]byte("pw"), []byte("saltsaltsaltsalt"), 2, 19456, 1, 32))
	if ok, err := checkPassword("pw", old); !ok || err != nil {
		t.Errorf("checkPassword(hash with m=19456,t=2) = %v, %v; want true", ok, err)
	}
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=18$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$aGFzaA", // would allocate ~100 GB
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
	} {
		if ok, err := checkPassword("x", h); ok || err == nil {
			t.Errorf("checkPassword(%q) = %v, %v; want false and an error", h, ok, err)
		}
	}
}
