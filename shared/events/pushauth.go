package events

import (
	"errors"
	"net/http"
	"strings"
)

// PushIdentity is the service name in the tokens that push deliveries
// carry under shopfn's own keys (the dev push bridge signs them with the
// development key); in the cloud Pub/Sub's OIDC token is checked by Cloud
// Run itself.
const PushIdentity = "pubsub"

// Push authentication modes (SHOPFN_PUSH_AUTH).
const (
	// PushAuthShopfn requires a shopfn service token of PushIdentity.
	PushAuthShopfn = "shopfn"
	// PushAuthCloudRun trusts the platform: Cloud Run admits only requests
	// with a Google OIDC token of an identity granted run.invoker (the push
	// subscription's service account), before the container sees them.
	PushAuthCloudRun = "cloudrun"
	// PushAuthNone accepts any request: for the Pub/Sub emulator, which
	// cannot sign its pushes.
	PushAuthNone = "none"
)

// Errors of Authenticated's check: the answer is 401 or 403 and the message
// is not processed (Pub/Sub retries it, and an attacker learns nothing).
var (
	ErrPushUnauthenticated = errors.New("push request without a valid token")
	ErrPushForbidden       = errors.New("push request from an identity other than the push subscription's")
)

// Authenticated guards a function's handler: check decides whether the
// request may be processed; ErrPushForbidden answers 403, any other error
// 401.
func Authenticated(check func(r *http.Request) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			code := http.StatusUnauthorized
			if errors.Is(err, ErrPushForbidden) {
				code = http.StatusForbidden
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BearerToken returns the token of the request's "Authorization: Bearer"
// header, or "".
func BearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
