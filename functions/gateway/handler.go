package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/shopfn/shopfn/shared/auth"
)

// gateway is the HTTP handler: the edge checks, then the generated proxy.
type gateway struct {
	cfg      Config
	log      *slog.Logger
	mux      *runtime.ServeMux
	verifier *auth.Verifier
	limiter  *auth.Limiter // nil: no rate limit
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	origins  origins
}

// Paths the gateway answers itself.
const (
	pathOpenAPI = "/openapi.json"
	pathHealth  = "/healthz"
)

// ServeHTTP implements http.Handler.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == pathHealth {
		// Liveness and startup probes: no limits, no logs.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"SERVING"}`)
		return
	}
	start := time.Now()
	id := requestID(r.Header.Get(headerRequestID))
	w.Header().Set(headerRequestID, id)
	ctx := g.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.tracer.Start(ctx, "gateway "+r.Method, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	st := &requestState{id: id}
	ctx = context.WithValue(ctx, requestStateKey{}, st)
	r = r.WithContext(ctx)

	rec := &recorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			g.log.ErrorContext(ctx, "panic", "request_id", id, "panic", p)
			if !rec.wrote {
				g.writeError(rec, r, errInternal)
			}
		}
		g.logRequest(ctx, r, rec, st, time.Since(start))
	}()
	g.serve(rec, r, st)
}

// serve runs the edge checks in order, then the proxy.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request, st *requestState) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !g.origins.allow(origin) {
			g.writeError(w, r, errOrigin.With("origin", origin))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", exposedHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", allowedMethods)
			h.Set("Access-Control-Allow-Headers", allowedHeaders)
			h.Set("Access-Control-Max-Age", strconv.Itoa(preflightMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	st.client = g.clientKey(r)
	if g.limiter != nil {
		if ok, wait := g.limiter.Allow(st.client); !ok {
			g.writeError(w, r, auth.ErrRateLimited.With("retry_after_ms", strconv.FormatInt(wait.Milliseconds()+1, 10)))
			return
		}
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		g.writeError(w, r, errBodyTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes), st: st}
	}
	if r.URL.Path == pathOpenAPI && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(OpenAPI)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// CORS settings.
const (
	allowedMethods = "GET, POST, PUT, PATCH, DELETE"
	allowedHeaders = "Authorization, Content-Type, Grpc-Timeout, X-Request-Id, Traceparent, Tracestate"
	exposedHeaders = "X-Request-Id, Retry-After"
	// preflightMaxAge lets a browser reuse a preflight for 10 minutes
	// (Chromium's own cap is 2 hours): origins change by redeploying.
	preflightMaxAge = 600
)

// origins are the allowed CORS origins.
type origins struct {
	any  bool
	list []string
}

func newOrigins(configured []string) origins {
	var o origins
	for _, s := range configured {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		switch s {
		case "":
		case "*":
			o.any = true
		default:
			o.list = append(o.list, strings.ToLower(s))
		}
	}
	return o
}

// allow reports whether a request from origin may proceed. Origins are
// compared as scheme://host[:port], case-insensitively.
func (o origins) allow(origin string) bool {
	return o.any || slices.Contains(o.list, strings.ToLower(origin))
}

// clientKey is the caller's rate-limit bucket: the subject of a bearer
// token that verifies, else the client's address. A token that does not
// verify is still forwarded (a public method ignores it, the others refuse
// it), but it cannot buy a fresh bucket.
func (g *gateway) clientKey(r *http.Request) string {
	if tok := bearer(r.Header.Get("Authorization")); tok != "" {
		if p, err := g.verifier.Verify(tok); err == nil && p.Subject != "" {
			return "u:" + p.Subject
		}
	}
	return "ip:" + clientAddr(r, g.cfg.TrustedProxyHops)
}

func bearer(h string) string {
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(tok)
	}
	return ""
}

// clientAddr is the client's IP address: from X-Forwarded-For when hops
// trusted proxies append to it (the entry hops from the right), else the
// connection's peer; as auth.ClientAddr does for gRPC.
func clientAddr(r *http.Request, hops int) string {
	if hops > 0 {
		var addrs []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for a := range strings.SplitSeq(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) >= hops {
			return addrs[len(addrs)-hops]
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// headerRequestID carries the request id to the client and, as metadata
// "x-request-id", to the service.
const headerRequestID = "X-Request-Id"

// maxRequestIDLen bounds a client-chosen request id.
const maxRequestIDLen = 128

// requestID returns the client's request id if it is 1 to 128 characters
// of letters, digits and "-_.:", else a new random one.
func requestID(client string) string {
	if n := len(client); n > 0 && n <= maxRequestIDLen && strings.IndexFunc(client, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.:", c))
	}) < 0 {
		return client
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestState is what the edge learned about a request, for the proxy's
// error handler and the log line.
type requestState struct {
	id           string
	client       string
	bodyTooLarge bool
}

type requestStateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestStateKey{}).(*requestState)
	if st == nil {
		return &requestState{}
	}
	return st
}

// requestMetadata is the metadata the gateway adds to every call: the
// request id.
func requestMetadata(ctx context.Context, _ *http.Request) metadata.MD {
	return metadata.Pairs("x-request-id", stateFrom(ctx).id)
}

// limitedBody is a request body cut at the size limit, which it records so
// that the error handler answers 413 rather than a JSON syntax error.
type limitedBody struct {
	io.ReadCloser
	st *requestState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.st.bodyTooLarge = true
	}
	return n, err
}

// recorder remembers the response status for the log.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush (streams flush every
// message).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequest logs a request at debug level, or at warning level when the
// gateway or a service failed (5xx). Cloud Run logs every request anyway.
func (g *gateway) logRequest(ctx context.Context, r *http.Request, rec *recorder, st *requestState, d time.Duration) {
	level := slog.LevelDebug
	if rec.status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(ctx, level) {
		return
	}
	g.log.LogAttrs(ctx, level, "request",
		slog.String("request_id", st.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("client", st.client),
	)
}
