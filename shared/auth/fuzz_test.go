package auth

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary strings to Verify. It must never panic, and a
// token it accepts must carry the identity that was really signed: a
// mutation may at most re-encode the same signed bytes.
func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	s := NewSigner(seed, "shopfn", "shopfn", 100*365*24*time.Hour)
	valid, _, err := s.Issue(Principal{Subject: "fuzz-user", Role: RoleCustomer})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, tok := range forged(f, seed) {
		f.Add(tok)
	}
	f.Add("")
	f.Add("Bearer " + valid)
	f.Fuzz(func(t *testing.T, tok string) {
		v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
		p, err := v.Verify(tok)
		if err != nil {
			return
		}
		if p.Subject != "fuzz-user" || p.Role != RoleCustomer {
			t.Fatalf("Verify(%q) accepted a forged identity %+v", tok, p)
		}
	})
}
