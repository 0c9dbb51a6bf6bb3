// Package auth authenticates callers and decides what they may call.
//
// End users carry EdDSA (Ed25519) JWTs issued by the user service and
// verified by every service with the public key. Each service declares a
// Policy: every method's access level, keyed by the generated
// *_FullMethodName constants; a method missing from the policy is denied.
// Authenticated callers are rate-limited per principal, anonymous ones per
// client address.
package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// Role is what a principal is.
type Role string

// The roles a token can carry.
const (
	RoleCustomer Role = "customer"
	RoleAdmin    Role = "admin"
	// RoleService is another shopfn deployable calling internal methods.
	RoleService Role = "service"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// Subject is the user id, or the deployable's name for a service.
	Subject string
	Role    Role
	// Expires is when the credentials stop being valid.
	Expires time.Time
}

// IsAdmin reports whether p may act on anyone's data.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the request, if it was
// authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Errors returned by Verify and the interceptors.
var (
	ErrTokenMissing = apperr.New(apperr.Unauthenticated, errorsv1.ErrorReason_TOKEN_MISSING, "missing bearer token")
	ErrTokenInvalid = apperr.New(apperr.Unauthenticated, errorsv1.ErrorReason_TOKEN_INVALID, "invalid token")
	ErrTokenExpired = apperr.New(apperr.Unauthenticated, errorsv1.ErrorReason_TOKEN_EXPIRED, "token expired")
)

// claims is the JWT body: the registered claims plus the role.
type claims struct {
	jwt.RegisteredClaims
	Role Role `json:"role"`
}

// keyID names a public key in the JWT "kid" header, so verifiers holding
// several keys (during a rotation) pick the right one without trying all.
func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// Signer issues tokens. Only the user service (and tests, and the dev
// runner) hold one.
type Signer struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time

	// checked verifies the first token with the public key: a key pair
	// assembled from a seed and a configured public key (see Keys) might
	// not match, and every token would then be refused everywhere.
	checked  sync.Once
	checkErr error
}

// NewSigner returns a signer for tokens valid for ttl.
func NewSigner(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration) *Signer {
	return &Signer{
		key: key, kid: keyID(key.Public().(ed25519.PublicKey)),
		issuer: issuer, audience: audience, ttl: ttl, now: time.Now,
	}
}

// Issue returns a signed token for p and its expiry (p.Expires is ignored).
func (s *Signer) Issue(p Principal) (string, time.Time, error) {
	if p.Subject == "" || p.Role == "" {
		return "", time.Time{}, errors.New("issue token: subject and role are required")
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   p.Subject,
			Audience:  jwt.ClaimStrings{s.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Role: p.Role,
	})
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	s.checked.Do(func() {
		if _, err := jwt.Parse(signed, func(*jwt.Token) (any, error) { return s.Public(), nil },
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithoutClaimsValidation()); err != nil {
			s.checkErr = fmt.Errorf("signing key does not match its public key: %w", err)
		}
	})
	if s.checkErr != nil {
		return "", time.Time{}, s.checkErr
	}
	return signed, exp, nil
}

// Public returns the key that verifies this signer's tokens.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// leeway tolerates clock skew between the issuing and verifying instances.
const leeway = 30 * time.Second

// verifiedCacheSize bounds the cache of verified tokens. A verification
// costs an Ed25519 signature check (~50 µs, more than a whole bare gRPC
// call); a cache hit is a map lookup. Each entry is a token string and a
// principal: 10,000 is a few MB at most.
const verifiedCacheSize = 10_000

// Verifier checks tokens against a set of public keys.
type Verifier struct {
	keys   map[string]ed25519.PublicKey
	parser *jwt.Parser
	now    func() time.Time

	mu       sync.RWMutex
	verified map[string]Principal
}

// NewVerifier returns a verifier accepting tokens signed by any of keys for
// the issuer and audience.
func NewVerifier(keys []ed25519.PublicKey, issuer, audience string) *Verifier {
	v := &Verifier{
		keys:     make(map[string]ed25519.PublicKey, len(keys)),
		now:      time.Now,
		verified: make(map[string]Principal),
	}
	for _, k := range keys {
		v.keys[keyID(k)] = k
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	)
	return v
}

// rfc8032Test1 is test vector 1 of RFC 8032 (public key, empty message,
// signature), used to warm up verification.
var rfc8032Test1 = [2]string{
	"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
}

// Warm runs one signature verification so that the first real one does not
// pay for building Ed25519's precomputed tables (about 0.3 ms on a cold
// process). Run it in the background at start-up, off the request path.
func Warm() {
	pub, _ := hex.DecodeString(rfc8032Test1[0])
	sig, _ := hex.DecodeString(rfc8032Test1[1])
	ed25519.Verify(pub, nil, sig)
}

// Verify checks a token's signature, algorithm, issuer, audience and times,
// and returns its principal.
func (v *Verifier) Verify(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrTokenMissing
	}
	v.mu.RLock()
	p, ok := v.verified[token]
	v.mu.RUnlock()
	if ok {
		if v.now().Before(p.Expires.Add(leeway)) {
			return p, nil
		}
		return Principal{}, ErrTokenExpired
	}
	p, err := v.verify(token)
	if err != nil {
		return Principal{}, err
	}
	v.mu.Lock()
	if len(v.verified) >= verifiedCacheSize {
		clear(v.verified)
	}
	v.verified[token] = p
	v.mu.Unlock()
	return p, nil
}

func (v *Verifier) verify(token string) (Principal, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != "" {
			if k, ok := v.keys[kid]; ok {
				return k, nil
			}
			return nil, errors.New("unknown key id")
		}
		set := jwt.VerificationKeySet{}
		for _, k := range v.keys {
			set.Keys = append(set.Keys, k)
		}
		return set, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, ErrTokenExpired.Wrap(err)
	case err != nil:
		return Principal{}, ErrTokenInvalid.Wrap(err)
	}
	switch c.Role {
	case RoleCustomer, RoleAdmin, RoleService:
	default:
		return Principal{}, ErrTokenInvalid.Wrap(fmt.Errorf("unknown role %q", c.Role))
	}
	if c.Subject == "" {
		return Principal{}, ErrTokenInvalid.Wrap(errors.New("no subject"))
	}
	return Principal{Subject: c.Subject, Role: c.Role, Expires: c.ExpiresAt.Time}, nil
}
