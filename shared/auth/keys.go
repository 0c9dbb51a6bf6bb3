package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the auth part of a deployable's configuration.
type Config struct {
	// SigningKey is the Ed25519 private key that signs tokens: a PKCS#8 PEM
	// block or the base64 of its 32-byte seed. Only the user service needs
	// it; in the cloud it comes from Secret Manager.
	SigningKey string `envconfig:"SHOPFN_JWT_SIGNING_KEY" secret:"true"`
	// PublicKeys are base64 Ed25519 public keys whose tokens are accepted
	// (the signing key's own is always accepted). Several keys allow a
	// rotation without downtime.
	PublicKeys []string `envconfig:"SHOPFN_JWT_PUBLIC_KEYS"`
	// DevKey lets a deployable with no key configured generate (or reuse) a
	// development key under its data directory. Turn it off in the cloud.
	DevKey   bool          `envconfig:"SHOPFN_JWT_DEV_KEY" default:"true"`
	Issuer   string        `envconfig:"SHOPFN_JWT_ISSUER" default:"shopfn"`
	Audience string        `envconfig:"SHOPFN_JWT_AUDIENCE" default:"shopfn"`
	TokenTTL time.Duration `envconfig:"SHOPFN_JWT_TTL" default:"1h"`

	// RateLimit is the sustained requests per second allowed per principal
	// (per client address for anonymous calls); RateBurst the burst above
	// it. Service-to-service calls are not limited. 0 disables the limit.
	RateLimit float64 `envconfig:"SHOPFN_RATE_LIMIT_RPS" default:"50"`
	RateBurst int     `envconfig:"SHOPFN_RATE_LIMIT_BURST" default:"100"`
	// TrustedProxyHops is how many proxies in front of the service append to
	// X-Forwarded-For (1 behind Cloud Run's front end). 0 uses the peer
	// address, which is right when clients connect directly.
	TrustedProxyHops int `envconfig:"SHOPFN_TRUSTED_PROXY_HOPS" default:"0"`
}

// DevKeyFile is the name of the generated development key in the data
// directory.
const DevKeyFile = "dev-jwt-ed25519.pem"

// Keys are the signing key (absent when this deployable only verifies) and
// the accepted public keys.
//
// The signing key's public half is kept next to its seed wherever possible
// (the dev key file holds both, SHOPFN_JWT_SIGNING_KEY may be the 64-byte
// seed+public form), because deriving it costs about 1 ms on a cold process
// (Ed25519's base-point table), a cost every cold start would pay.
type Keys struct {
	seed       []byte
	signingPub ed25519.PublicKey
	Public     []ed25519.PublicKey
}

// LoadKeys reads the keys from cfg, or from (creating if needed) the
// development key in dataDir when none is configured and cfg.DevKey allows.
func LoadKeys(cfg Config, dataDir string) (Keys, error) {
	var k Keys
	for _, s := range cfg.PublicKeys {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return Keys{}, fmt.Errorf("SHOPFN_JWT_PUBLIC_KEYS: %q is not a base64 Ed25519 public key", s)
		}
		k.Public = append(k.Public, ed25519.PublicKey(raw))
	}
	var err error
	switch {
	case cfg.SigningKey != "":
		if k.seed, k.signingPub, err = ParsePrivateKey([]byte(cfg.SigningKey)); err != nil {
			return Keys{}, fmt.Errorf("SHOPFN_JWT_SIGNING_KEY: %w", err)
		}
	case len(k.Public) == 0 && cfg.DevKey:
		if k.seed, k.signingPub, err = devKey(filepath.Join(dataDir, DevKeyFile)); err != nil {
			return Keys{}, err
		}
	case len(k.Public) == 0:
		return Keys{}, errors.New("no JWT key: set SHOPFN_JWT_SIGNING_KEY or SHOPFN_JWT_PUBLIC_KEYS (or SHOPFN_JWT_DEV_KEY=true for development)")
	}
	if k.seed != nil {
		if k.signingPub == nil {
			k.signingPub = ed25519.NewKeyFromSeed(k.seed).Public().(ed25519.PublicKey)
		}
		k.Public = append(k.Public, k.signingPub)
	}
	return k, nil
}

// Private returns the signing key, or nil if k has none. The key is
// assembled from the seed and the known public half, not derived.
func (k Keys) Private() ed25519.PrivateKey {
	if k.seed == nil {
		return nil
	}
	return ed25519.PrivateKey(append(append(make([]byte, 0, ed25519.PrivateKeySize), k.seed...), k.signingPub...))
}

// NewSigner returns the signer for k, or nil if k has no signing key.
func (k Keys) NewSigner(cfg Config) *Signer {
	if k.seed == nil {
		return nil
	}
	return NewSigner(k.Private(), cfg.Issuer, cfg.Audience, cfg.TokenTTL)
}

// NewVerifier returns a verifier of tokens signed by any of k's keys.
func (k Keys) NewVerifier(cfg Config) *Verifier {
	return NewVerifier(k.Public, cfg.Issuer, cfg.Audience)
}

// GenerateKey returns a new signing key as SHOPFN_JWT_SIGNING_KEY takes it
// (base64 of the 64-byte seed and public key) and its public key as
// SHOPFN_JWT_PUBLIC_KEYS takes it.
func GenerateKey() (signing, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(pub), nil
}

// ParsePrivateKey reads an Ed25519 private key: PEM (a PKCS#8 "PRIVATE
// KEY" block, optionally followed by its PKIX "PUBLIC KEY" block), or the
// base64 of the 32-byte seed or of the 64-byte seed+public key. It returns
// the seed and, when the input carries it, the public key (nil otherwise).
func ParsePrivateKey(b []byte) (seed []byte, pub ed25519.PublicKey, err error) {
	if block, rest := pem.Decode(b); block != nil {
		if block.Type != "PRIVATE KEY" {
			return nil, nil, fmt.Errorf("PEM block %q, want PRIVATE KEY", block.Type)
		}
		if seed, err = pkcs8Seed(block.Bytes); err != nil {
			return nil, nil, err
		}
		if pubBlock, _ := pem.Decode(rest); pubBlock != nil && pubBlock.Type == "PUBLIC KEY" {
			key, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("parse public key: %w", err)
			}
			if pub, _ = key.(ed25519.PublicKey); pub == nil {
				return nil, nil, fmt.Errorf("public key is %T, want Ed25519", key)
			}
		}
		return seed, pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	switch {
	case err != nil:
		return nil, nil, errors.New("neither PEM nor base64")
	case len(raw) == ed25519.SeedSize:
		return raw, nil, nil
	case len(raw) == ed25519.PrivateKeySize:
		return raw[:ed25519.SeedSize], ed25519.PublicKey(raw[ed25519.SeedSize:]), nil
	}
	return nil, nil, fmt.Errorf("base64 key of %d bytes, want 32 (seed) or 64 (seed and public key)", len(raw))
}

// oidEd25519 identifies Ed25519 keys (RFC 8410).
var oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}

// pkcs8Seed extracts the seed of a PKCS#8 Ed25519 key without deriving the
// key pair (which crypto/x509 would do).
func pkcs8Seed(der []byte) ([]byte, error) {
	var p struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
	}
	if !p.Algorithm.Algorithm.Equal(oidEd25519) {
		return nil, fmt.Errorf("PKCS#8 key algorithm %v, want Ed25519", p.Algorithm.Algorithm)
	}
	var seed []byte
	if _, err := asn1.Unmarshal(p.PrivateKey, &seed); err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("malformed Ed25519 PKCS#8 key")
	}
	return seed, nil
}

// MarshalPrivateKey encodes key as a PKCS#8 PEM block followed by its PKIX
// public key block.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})...), nil
}

// devKey reads the development key at path, generating it on first use.
// Concurrent first uses (several deployables starting at once) agree on
// one key: the file is linked into place atomically and the loser reads
// the winner's.
func devKey(path string) ([]byte, ed25519.PublicKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		return ParsePrivateKey(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read dev key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	pemBytes, err := MarshalPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".devkey-*")
	if err != nil {
		return nil, nil, fmt.Errorf("write dev key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, nil, fmt.Errorf("write dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, nil, fmt.Errorf("write dev key: %w", err)
	}
	// Link fails if another process created the key first; then use theirs.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("install dev key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read dev key: %w", err)
	}
	return ParsePrivateKey(b)
}
