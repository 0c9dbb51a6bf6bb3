package dial

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/compute/metadata"
	"google.golang.org/grpc/credentials"
)

// ServerlessAuthHeader carries a Google ID token for Cloud Run's own access
// check (run.invoker), leaving "authorization" to shopfn's token: Cloud
// Run checks this header first and strips it before the request reaches
// the container.
const ServerlessAuthHeader = "x-serverless-authorization"

// idTokenMargin is how long before its expiry an ID token is replaced, so
// that one never expires in flight (they live an hour).
const idTokenMargin = 5 * time.Minute

// IDTokens are per-call credentials with a Google ID token whose audience is
// the callee's URL, fetched from the metadata server of the instance (Cloud
// Run, GCE) as the instance's service account, and cached until shortly
// before it expires.
type IDTokens struct {
	audience string
	fetch    func(ctx context.Context, audience string) (string, error)

	mu      sync.Mutex
	token   string
	expires time.Time
}

var _ credentials.PerRPCCredentials = (*IDTokens)(nil)

// NewIDTokens returns ID-token credentials for calls to target, an https://
// URL (its scheme and host are the audience Cloud Run expects).
func NewIDTokens(target string) (*IDTokens, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ID tokens need an https:// target, not %q", target)
	}
	return &IDTokens{audience: "https://" + u.Host, fetch: metadataIDToken}, nil
}

func metadataIDToken(ctx context.Context, audience string) (string, error) {
	return metadata.GetWithContext(ctx, "instance/service-accounts/default/identity?format=full&audience="+url.QueryEscape(audience))
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *IDTokens) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" || time.Until(c.expires) < idTokenMargin {
		tok, err := c.fetch(ctx, c.audience)
		if err != nil {
			return nil, fmt.Errorf("ID token for %s: %w", c.audience, err)
		}
		exp, err := tokenExpiry(tok)
		if err != nil {
			return nil, fmt.Errorf("ID token for %s: %w", c.audience, err)
		}
		c.token, c.expires = tok, exp
	}
	return map[string]string{ServerlessAuthHeader: "Bearer " + c.token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a
// token never travels in plaintext.
func (c *IDTokens) RequireTransportSecurity() bool { return true }

// tokenExpiry reads the exp claim of a JWT without verifying it (the
// metadata server is the issuer; the callee verifies).
func tokenExpiry(jwt string) (time.Time, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, fmt.Errorf("JWT payload: %w", err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		return time.Time{}, fmt.Errorf("JWT without exp")
	}
	return time.Unix(claims.Exp, 0), nil
}
