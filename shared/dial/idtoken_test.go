package dial

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"
)

func jwtExpiring(at time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"aud":"x"}`, at.Unix())))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
}

func TestIDTokensCacheAndRefresh(t *testing.T) {
	c, err := NewIDTokens("https://payment-123.europe-west1.run.app")
	if err != nil {
		t.Fatal(err)
	}
	var fetches []string
	next := time.Now().Add(time.Hour)
	c.fetch = func(_ context.Context, aud string) (string, error) {
		fetches = append(fetches, aud)
		return jwtExpiring(next), nil
	}
	for range 3 {
		md, err := c.GetRequestMetadata(context.Background())
		if err != nil {
			t.Fatalf("GetRequestMetadata = %v", err)
		}
		if got := md[ServerlessAuthHeader]; got != "Bearer "+jwtExpiring(next) {
			t.Errorf("%s = %q", ServerlessAuthHeader, got)
		}
	}
	if len(fetches) != 1 || fetches[0] != "https://payment-123.europe-west1.run.app" {
		t.Errorf("fetches = %v, want one for the service URL", fetches)
	}
	// Close to expiry: a new one.
	c.expires = time.Now().Add(time.Minute)
	if _, err := c.GetRequestMetadata(context.Background()); err != nil || len(fetches) != 2 {
		t.Errorf("refresh: fetches = %d, err %v; want 2, nil", len(fetches), err)
	}
}

func TestIDTokensErrors(t *testing.T) {
	for _, target := range []string{"localhost:9004", "http://payment", "https://"} {
		if _, err := NewIDTokens(target); err == nil {
			t.Errorf("NewIDTokens(%q) = nil error, want refusal (tokens only over TLS)", target)
		}
	}
	c, _ := NewIDTokens("https://payment")
	c.fetch = func(context.Context, string) (string, error) { return "", errors.New("no metadata server") }
	if _, err := c.GetRequestMetadata(context.Background()); err == nil {
		t.Error("GetRequestMetadata without a metadata server = nil error")
	}
	c.fetch = func(context.Context, string) (string, error) { return "not-a-jwt", nil }
	if _, err := c.GetRequestMetadata(context.Background()); err == nil {
		t.Error("GetRequestMetadata with a malformed token = nil error")
	}
	if !c.RequireTransportSecurity() {
		t.Error("RequireTransportSecurity = false")
	}
}
