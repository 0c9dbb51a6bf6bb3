package auth

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// Access is who may call a method.
type Access uint8

// The access levels. The zero value denies: a method missing from a Policy
// cannot be called by anyone.
const (
	Deny Access = iota
	// Public methods need no credentials (a valid token is still read, so
	// the handler knows an admin when it sees one).
	Public
	// Customer methods need a signed-in user (customer or admin) or a
	// service; handlers restrict customers to their own data.
	Customer
	// Admin methods need an admin.
	Admin
	// Internal methods are for other shopfn deployables only.
	Internal
)

var accessNames = [...]string{Deny: "deny", Public: "public", Customer: "customer", Admin: "admin", Internal: "internal"}

func (a Access) String() string {
	if int(a) < len(accessNames) {
		return accessNames[a]
	}
	return "access(" + strconv.Itoa(int(a)) + ")"
}

// Policy maps full method names (the generated *_FullMethodName constants)
// to their access level.
type Policy map[string]Access

// Missing returns the methods of the services registered on srv that have
// no entry in p, sorted. A deployable refuses to start while any is
// missing.
func (p Policy) Missing(srv interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}) []string {
	var missing []string
	for name, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if p[full] == Deny {
				missing = append(missing, full)
			}
		}
	}
	slices.Sort(missing)
	return missing
}

// Uncovered returns the methods of the service described by desc (a
// generated *_ServiceDesc) that have no entry in p: every service tests that
// this is empty.
func (p Policy) Uncovered(desc *grpc.ServiceDesc) []string {
	var missing []string
	check := func(name string) {
		if full := "/" + desc.ServiceName + "/" + name; p[full] == Deny {
			missing = append(missing, full)
		}
	}
	for _, m := range desc.Methods {
		check(m.MethodName)
	}
	for _, st := range desc.Streams {
		check(st.StreamName)
	}
	return missing
}

// Errors of the access check.
var (
	ErrMethodNotAllowed = apperr.New(apperr.PermissionDenied, errorsv1.ErrorReason_METHOD_NOT_ALLOWED, "method not allowed")
	ErrPermissionDenied = apperr.New(apperr.PermissionDenied, errorsv1.ErrorReason_PERMISSION_DENIED, "permission denied")
	ErrRateLimited      = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_RATE_LIMITED, "too many requests")
)

// Authenticator runs a service's access policy on every call: it reads the
// bearer token, checks the method's access level, applies the per-caller
// rate limit, and puts the principal in the context.
type Authenticator struct {
	policy   Policy
	verifier *Verifier
	limiter  *Limiter
	hops     int
	// callers, when not nil, are the services whose tokens internal methods
	// accept (by subject); nil accepts any service. callersFrom, when set,
	// fills it on the first internal call.
	callers     map[string]bool
	callersFrom func() []string
	callersOnce sync.Once
}

// NewAuthenticator returns an authenticator for policy. The rate limit and
// proxy settings come from cfg.
func NewAuthenticator(policy Policy, verifier *Verifier, cfg Config) *Authenticator {
	a := &Authenticator{policy: policy, verifier: verifier, hops: cfg.TrustedProxyHops}
	if cfg.RateLimit > 0 {
		a.limiter = NewLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	return a
}

// OnlyCallers restricts internal methods to service tokens whose subject
// is one of names (the deployables infra/stack.yaml lists as callers).
// Without it any service token is accepted.
func (a *Authenticator) OnlyCallers(names []string) *Authenticator {
	a.callers = make(map[string]bool, len(names))
	for _, n := range names {
		a.callers[n] = true
	}
	return a
}

// OnlyCallersFrom is OnlyCallers with the names read by from on the first
// internal call, which keeps that reading (infra/stack.yaml) off a cold
// start. from returning nil accepts any service.
func (a *Authenticator) OnlyCallersFrom(from func() []string) *Authenticator {
	a.callersFrom = from
	return a
}

// allowedCaller reports whether internal methods answer this service.
func (a *Authenticator) allowedCaller(subject string) bool {
	a.callersOnce.Do(func() {
		if a.callersFrom != nil {
			if names := a.callersFrom(); names != nil {
				a.OnlyCallers(names)
			}
		}
	})
	return a.callers == nil || a.callers[subject]
}

// Policy returns the policy the authenticator enforces.
func (a *Authenticator) Policy() Policy { return a.policy }

// Authorize decides whether the call to fullMethod may proceed and returns
// the context the handler runs with.
func (a *Authenticator) Authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	access := a.policy[fullMethod]
	if access == Deny {
		return ctx, ErrMethodNotAllowed.With("method", fullMethod)
	}
	token := bearer(ctx)
	var (
		p   Principal
		err error
	)
	if token != "" || access != Public {
		p, err = a.verifier.Verify(token)
	}
	switch {
	case access == Public:
		// An unusable token on a public method is ignored: the call is
		// anonymous, as if no token had been sent.
		if err != nil || token == "" {
			p = Principal{}
		}
	case err != nil:
		return ctx, err
	case access == Admin && p.Role != RoleAdmin,
		access == Internal && p.Role != RoleService:
		return ctx, ErrPermissionDenied
	case access == Internal && !a.allowedCaller(p.Subject):
		return ctx, ErrPermissionDenied.With("caller", p.Subject)
	}
	if a.limiter != nil && p.Role != RoleService {
		key := "u:" + p.Subject
		if p.Subject == "" {
			key = "ip:" + ClientAddr(ctx, a.hops)
		}
		if ok, wait := a.limiter.Allow(key); !ok {
			return ctx, ErrRateLimited.With("retry_after_ms", strconv.FormatInt(wait.Milliseconds()+1, 10))
		}
	}
	if p.Subject != "" {
		ctx = NewContext(ctx, p)
	}
	return ctx, nil
}

// bearer returns the token of the "authorization: Bearer <token>" header.
func bearer(ctx context.Context) string {
	for _, v := range metadata.ValueFromIncomingContext(ctx, "authorization") {
		if scheme, tok, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return ""
}

// WithBearer returns ctx with an outgoing "authorization: Bearer <token>"
// header, for clients.
func WithBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// ServiceToken mints short-lived tokens for service-to-service calls from a
// signer; callers keep one and refresh it before it expires.
func ServiceToken(s *Signer, service string) (string, time.Time, error) {
	return s.Issue(Principal{Subject: service, Role: RoleService})
}
