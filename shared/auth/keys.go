package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
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

// Keys are the signing key (nil when this deployable only verifies) and the
// accepted public keys.
type Keys struct {
	Signing ed25519.PrivateKey
	Public  []ed25519.PublicKey
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
	switch {
	case cfg.SigningKey != "":
		key, err := ParsePrivateKey([]byte(cfg.SigningKey))
		if err != nil {
			return Keys{}, fmt.Errorf("SHOPFN_JWT_SIGNING_KEY: %w", err)
		}
		k.Signing = key
	case len(k.Public) == 0 && cfg.DevKey:
		key, err := devKey(filepath.Join(dataDir, DevKeyFile))
		if err != nil {
			return Keys{}, err
		}
		k.Signing = key
	case len(k.Public) == 0:
		return Keys{}, errors.New("no JWT key: set SHOPFN_JWT_SIGNING_KEY or SHOPFN_JWT_PUBLIC_KEYS (or SHOPFN_JWT_DEV_KEY=true for development)")
	}
	if k.Signing != nil {
		k.Public = append(k.Public, k.Signing.Public().(ed25519.PublicKey))
	}
	return k, nil
}

// ParsePrivateKey reads an Ed25519 private key from a PKCS#8 PEM block or
// the base64 of its 32-byte seed.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	if block, _ := pem.Decode(b); block != nil {
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
		}
		ed, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want Ed25519", key)
		}
		return ed, nil
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("neither a PEM block nor a base64 32-byte Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// MarshalPrivateKey encodes key as a PKCS#8 PEM block.
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// devKey reads the development key at path, generating it on first use.
// Concurrent first uses (several deployables starting at once) agree on
// one key: the file is created exclusively and the loser reads the winner's.
func devKey(path string) (ed25519.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		return ParsePrivateKey(b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read dev key: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pemBytes, err := MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".devkey-*")
	if err != nil {
		return nil, fmt.Errorf("write dev key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write dev key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write dev key: %w", err)
	}
	// Link fails if another process created the key first; then use theirs.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("install dev key: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dev key: %w", err)
	}
	return ParsePrivateKey(b)
}

// NewSigner returns the signer for k, or nil if k has no signing key.
func (k Keys) NewSigner(cfg Config) *Signer {
	if k.Signing == nil {
		return nil
	}
	return NewSigner(k.Signing, cfg.Issuer, cfg.Audience, cfg.TokenTTL)
}

// NewVerifier returns a verifier of tokens signed by any of k's keys.
func (k Keys) NewVerifier(cfg Config) *Verifier {
	return NewVerifier(k.Public, cfg.Issuer, cfg.Audience)
}
