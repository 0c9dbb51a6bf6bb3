package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shopfn/shopfn/shared/apperr"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forged returns tokens every verifier must refuse, built the ways attackers
// and buggy clients build them.
func forged(t testing.TB, key ed25519.PrivateKey) map[string]string {
	t.Helper()
	good := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "shopfn", Subject: "u1", Audience: jwt.ClaimStrings{"shopfn"},
			IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		},
		Role: RoleCustomer,
	}
	sign := func(m jwt.SigningMethod, c claims, k any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := good
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	wrongIss := good
	wrongIss.Issuer = "evil"
	wrongAud := good
	wrongAud.Audience = jwt.ClaimStrings{"other"}
	noExp := good
	noExp.ExpiresAt = nil
	badRole := good
	badRole.Role = "root"
	noSub := good
	noSub.Subject = ""

	valid := sign(jwt.SigningMethodEdDSA, good, key)
	parts := strings.Split(valid, ".")
	return map[string]string{
		"other key":                       sign(jwt.SigningMethodEdDSA, good, newKey(t)),
		"alg none":                        sign(jwt.SigningMethodNone, good, jwt.UnsafeAllowNoneSignatureType),
		"HS256 with public key as secret": sign(jwt.SigningMethodHS256, good, []byte(key.Public().(ed25519.PublicKey))),
		"expired":                         sign(jwt.SigningMethodEdDSA, expired, key),
		"wrong issuer":                    sign(jwt.SigningMethodEdDSA, wrongIss, key),
		"wrong audience":                  sign(jwt.SigningMethodEdDSA, wrongAud, key),
		"no expiry":                       sign(jwt.SigningMethodEdDSA, noExp, key),
		"unknown role":                    sign(jwt.SigningMethodEdDSA, badRole, key),
		"no subject":                      sign(jwt.SigningMethodEdDSA, noSub, key),
		"tampered body":                   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","role":"admin","iss":"shopfn","aud":"shopfn","exp":9999999999}`)) + "." + parts[2],
		"garbage":                         "not.a.token",
		"two parts":                       parts[0] + "." + parts[1],
	}
}

func TestVerify(t *testing.T) {
	key := newKey(t)
	s := NewSigner(key, "shopfn", "shopfn", time.Hour)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")

	tok, exp, err := s.Issue(Principal{Subject: "u1", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call is served from the cache
		p, err := v.Verify(tok)
		if err != nil || p.Subject != "u1" || p.Role != RoleAdmin || !p.Expires.Equal(exp) {
			t.Fatalf("Verify(valid) = %+v, %v; want u1 admin expiring %v", p, err, exp)
		}
	}

	for name, tok := range forged(t, key) {
		t.Run(name, func(t *testing.T) {
			p, err := v.Verify(tok)
			if err == nil {
				t.Fatalf("Verify(%s) = %+v, want an error", name, p)
			}
			want := ErrTokenInvalid
			if name == "expired" {
				want = ErrTokenExpired
			}
			if !errors.Is(err, want) {
				t.Errorf("Verify(%s) = %v, want %v", name, err, want)
			}
		})
	}
	if _, err := v.Verify(""); !errors.Is(err, ErrTokenMissing) {
		t.Errorf("Verify(\"\") = %v, want ErrTokenMissing", err)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	s := NewSigner(newKey(t), "shopfn", "shopfn", time.Minute)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
	tok, _, _ := s.Issue(Principal{Subject: "u1", Role: RoleCustomer})
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Verify(cached, an hour later) = %v, want ErrTokenExpired", err)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	v := NewVerifier([]ed25519.PublicKey{oldKey.Public().(ed25519.PublicKey), newK.Public().(ed25519.PublicKey)}, "shopfn", "shopfn")
	for _, k := range []ed25519.PrivateKey{oldKey, newK} {
		tok, _, _ := NewSigner(k, "shopfn", "shopfn", time.Hour).Issue(Principal{Subject: "u", Role: RoleCustomer})
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("Verify(token of an accepted key) = %v", err)
		}
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKeys(Config{DevKey: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("dev key file: %v, mode %v; want 0600", err, info)
	}
	k2, err := LoadKeys(Config{DevKey: true}, dir)
	if err != nil || !k1.Private().Equal(k2.Private()) {
		t.Errorf("second LoadKeys returned another key (%v)", err)
	}
	if _, err := LoadKeys(Config{}, t.TempDir()); err == nil {
		t.Error("LoadKeys with no key and no dev key = nil error, want one")
	}
	seed := base64.StdEncoding.EncodeToString(k1.Private().Seed())
	k3, err := LoadKeys(Config{SigningKey: seed}, t.TempDir())
	if err != nil || !k3.Private().Equal(k1.Private()) {
		t.Errorf("LoadKeys(seed) = %v, want the same key", err)
	}
	pub := base64.StdEncoding.EncodeToString(k1.Public[0])
	k4, err := LoadKeys(Config{PublicKeys: []string{pub}}, t.TempDir())
	if err != nil || k4.Private() != nil || len(k4.Public) != 1 {
		t.Errorf("LoadKeys(public only) = %+v, %v; want one public key, no signer", k4, err)
	}
	if _, err := LoadKeys(Config{PublicKeys: []string{"abc"}}, t.TempDir()); err == nil {
		t.Error("LoadKeys(bad public key) = nil error")
	}
	if _, err := LoadKeys(Config{SigningKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, t.TempDir()); err == nil {
		t.Error("LoadKeys(bad PEM) = nil error")
	}
}

func TestDevKeyConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadKeys(Config{DevKey: true}, dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = k.Private()
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !k.Equal(keys[0]) {
			t.Fatal("concurrent first uses of the dev key got different keys")
		}
	}
}

const (
	mPublic   = "/t.S/Public"
	mCustomer = "/t.S/Customer"
	mAdmin    = "/t.S/Admin"
	mInternal = "/t.S/Internal"
)

func TestAuthorize(t *testing.T) {
	s := NewSigner(newKey(t), "shopfn", "shopfn", time.Hour)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
	a := NewAuthenticator(Policy{mPublic: Public, mCustomer: Customer, mAdmin: Admin, mInternal: Internal}, v, Config{})
	tok := func(r Role) string {
		tk, _, err := s.Issue(Principal{Subject: "x", Role: r})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	tests := []struct {
		method string
		token  string
		want   error
	}{
		{mPublic, "", nil},
		{mPublic, "garbage", nil},
		{mCustomer, "", ErrTokenMissing},
		{mCustomer, "garbage", ErrTokenInvalid},
		{mCustomer, tok(RoleCustomer), nil},
		{mCustomer, tok(RoleAdmin), nil},
		{mCustomer, tok(RoleService), nil},
		{mAdmin, tok(RoleCustomer), ErrPermissionDenied},
		{mAdmin, tok(RoleService), ErrPermissionDenied},
		{mAdmin, tok(RoleAdmin), nil},
		{mInternal, tok(RoleAdmin), ErrPermissionDenied},
		{mInternal, tok(RoleService), nil},
		{"/t.S/Unlisted", tok(RoleAdmin), ErrMethodNotAllowed},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.token != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tt.token))
		}
		got, err := a.Authorize(ctx, tt.method)
		if !errors.Is(err, tt.want) {
			t.Errorf("Authorize(%s, %.12s…) = %v, want %v", tt.method, tt.token, err, tt.want)
		}
		if p, ok := FromContext(got); err == nil && tt.method != mPublic && (!ok || p.Subject != "x") {
			t.Errorf("Authorize(%s) context principal = %+v, %v; want subject x", tt.method, p, ok)
		}
	}
}

func TestAuthorizeRateLimit(t *testing.T) {
	s := NewSigner(newKey(t), "shopfn", "shopfn", time.Hour)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
	a := NewAuthenticator(Policy{mCustomer: Customer, mInternal: Internal}, v, Config{RateLimit: 1, RateBurst: 3})
	call := func(r Role, m string) error {
		tk, _, _ := s.Issue(Principal{Subject: string(r), Role: r})
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tk))
		_, err := a.Authorize(ctx, m)
		return err
	}
	for i := range 3 {
		if err := call(RoleCustomer, mCustomer); err != nil {
			t.Fatalf("call %d within burst = %v", i, err)
		}
	}
	err := call(RoleCustomer, mCustomer)
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("call over burst = %v, want ErrRateLimited", err)
	}
	var e *apperr.Error
	if !errors.As(err, &e) || e.Metadata["retry_after_ms"] == "" {
		t.Errorf("rate-limit error %+v has no retry_after_ms", e)
	}
	for range 10 {
		if err := call(RoleService, mInternal); err != nil {
			t.Fatalf("service call = %v, want no limit for services", err)
		}
	}
}

func TestClientAddr(t *testing.T) {
	md := metadata.Pairs("x-forwarded-for", "6.6.6.6, 1.2.3.4", "x-forwarded-for", "10.0.0.1")
	ctx := metadata.NewIncomingContext(context.Background(), md)
	if got := ClientAddr(ctx, 2); got != "1.2.3.4" {
		t.Errorf("ClientAddr(2 hops) = %q, want 1.2.3.4 (the spoofable left entry must be ignored)", got)
	}
	if got := ClientAddr(ctx, 0); got != "unknown" {
		t.Errorf("ClientAddr(0 hops, no peer) = %q, want unknown", got)
	}
}

func TestWarmVectorIsValid(t *testing.T) {
	pub, _ := hex.DecodeString(rfc8032Test1[0])
	sig, _ := hex.DecodeString(rfc8032Test1[1])
	if !ed25519.Verify(pub, nil, sig) {
		t.Fatal("the warm-up vector does not verify: Warm would not build the tables")
	}
}

func TestMismatchedKeyPairIsCaught(t *testing.T) {
	a, b := newKey(t), newKey(t)
	seed := base64.StdEncoding.EncodeToString(append(append([]byte{}, a.Seed()...), b.Public().(ed25519.PublicKey)...))
	k, err := LoadKeys(Config{SigningKey: seed, TokenTTL: time.Hour}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.NewSigner(Config{TokenTTL: time.Hour}).Issue(Principal{Subject: "u", Role: RoleCustomer}); err == nil {
		t.Error("Issue with a seed and someone else's public key = nil error, want one")
	}
}

func TestGeneratedKeyLoads(t *testing.T) {
	signing, public, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeys(Config{SigningKey: signing, PublicKeys: []string{public}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := k.NewSigner(Config{Issuer: "i", Audience: "a", TokenTTL: time.Hour})
	tok, _, err := s.Issue(Principal{Subject: "u", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.NewVerifier(Config{Issuer: "i", Audience: "a"}).Verify(tok); err != nil {
		t.Errorf("Verify(token of a generated key) = %v", err)
	}
}

func TestServiceCredentials(t *testing.T) {
	s := NewSigner(newKey(t), "shopfn", "shopfn", 2*time.Minute)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
	c := NewServiceCredentials(s, "order")
	md, err := c.GetRequestMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimPrefix(md["authorization"], "Bearer ")
	p, err := v.Verify(tok)
	if err != nil || p.Subject != "order" || p.Role != RoleService {
		t.Fatalf("service token verifies as %+v, %v; want order/service", p, err)
	}
	again, _ := c.GetRequestMetadata(context.Background())
	if again["authorization"] != md["authorization"] {
		t.Error("a fresh token was minted for every call")
	}
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	c.expires = time.Now().Add(30 * time.Second)
	renewed, _ := c.GetRequestMetadata(context.Background())
	if renewed["authorization"] == md["authorization"] {
		t.Error("a token about to expire was not renewed")
	}
}

func TestUncovered(t *testing.T) {
	desc := &grpc.ServiceDesc{
		ServiceName: "t.S",
		Methods:     []grpc.MethodDesc{{MethodName: "Public"}, {MethodName: "Forgotten"}},
		Streams:     []grpc.StreamDesc{{StreamName: "Customer"}},
	}
	got := Policy{mPublic: Public, mCustomer: Customer}.Uncovered(desc)
	if len(got) != 1 || got[0] != "/t.S/Forgotten" {
		t.Errorf("Uncovered = %v, want [/t.S/Forgotten]", got)
	}
}

func TestAuthorizeOnlyListedCallers(t *testing.T) {
	s := NewSigner(newKey(t), "shopfn", "shopfn", time.Hour)
	v := NewVerifier([]ed25519.PublicKey{s.Public()}, "shopfn", "shopfn")
	a := NewAuthenticator(Policy{mCustomer: Customer, mInternal: Internal}, v, Config{}).OnlyCallers([]string{"order", "scheduler"})
	tests := []struct {
		method  string
		subject string
		role    Role
		want    error
	}{
		{mInternal, "order", RoleService, nil},
		{mInternal, "scheduler", RoleService, nil},
		{mInternal, "imaging", RoleService, ErrPermissionDenied},
		{mInternal, "order", RoleAdmin, ErrPermissionDenied},
		{mCustomer, "imaging", RoleService, nil}, // only internal methods are restricted
	}
	for _, tt := range tests {
		tk, _, err := s.Issue(Principal{Subject: tt.subject, Role: tt.role})
		if err != nil {
			t.Fatal(err)
		}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tk))
		if _, err := a.Authorize(ctx, tt.method); !errors.Is(err, tt.want) {
			t.Errorf("Authorize(%s as %s %s) = %v, want %v", tt.method, tt.role, tt.subject, err, tt.want)
		}
	}
}
