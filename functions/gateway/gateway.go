// Package gateway is the HTTP/JSON gateway deployable: the one public entry
// for browsers, mobile web views and tools that speak only HTTP/JSON. It is a
// grpc-gateway reverse proxy, generated from the google.api.http rules of the
// protos, in front of the services' gRPC endpoints.
//
// On every request, outermost first: a request id (X-Request-Id, taken from
// the client when well-formed, else made) and the W3C trace context of the
// caller; CORS for the configured origins (a request from any other origin
// is refused before it reaches a service); a per-client rate limit (by the
// bearer token's subject when the token verifies, else by client address);
// a request body limit; then the proxy, which forwards the caller's bearer
// token, the request id and the trace context to the service. Errors are
// google.rpc.Status JSON with the HTTP status of their gRPC code and a
// google.rpc.ErrorInfo reason. The OpenAPI document generated from the
// protos is served at /openapi.json.
//
// Internal methods have no HTTP rule and so no route; client and
// bidirectional streams (catalog BulkImportProducts and UploadProductImage,
// support Chat) stay gRPC-only. WatchOrder streams as newline-delimited JSON.
//
// The same code runs as its own container (functions/gateway/cmd),
// in-process under `shopfn dev`, and in tests: Run takes a listener and
// stops when its context ends. It links no store and no Pub/Sub client.
package gateway

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// Name is the deployable's name.
const Name = "gateway"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the HTTP/JSON API,
// generated from the protos by protoc-gen-openapiv2 (make generate) and
// served at /openapi.json.
//
//go:embed openapi/shopfn.swagger.json
var OpenAPI []byte

// Config is the gateway's configuration, read from the environment.
//
// Of the shared platform settings the gateway uses PORT, the shutdown grace,
// the data directory (for the development key), telemetry, the JWT
// verification keys, the rate limit (SHOPFN_RATE_LIMIT_RPS / _BURST, per
// client) and SHOPFN_TRUSTED_PROXY_HOPS; the gRPC server settings do not
// apply to it.
type Config struct {
	serve.Platform

	// The services behind the gateway: host:port (plaintext) or
	// https://host, as the other deployables dial each other. The defaults
	// are the `shopfn dev` ports.
	UserAddr      string `envconfig:"SHOPFN_USER_ADDR" default:"localhost:9001"`
	CatalogAddr   string `envconfig:"SHOPFN_CATALOG_ADDR" default:"localhost:9002"`
	InventoryAddr string `envconfig:"SHOPFN_INVENTORY_ADDR" default:"localhost:9003"`
	PaymentAddr   string `envconfig:"SHOPFN_PAYMENT_ADDR" default:"localhost:9004"`
	OrderAddr     string `envconfig:"SHOPFN_ORDER_ADDR" default:"localhost:9005"`
	SupportAddr   string `envconfig:"SHOPFN_SUPPORT_ADDR" default:"localhost:9006"`

	// MaxBodyBytes caps a request body (413 with MESSAGE_TOO_LARGE above).
	// The largest valid request, a product with a 5,000-character
	// description of 4-byte characters, is about 21 KB; 64 KiB leaves room
	// and bounds what one slow client can make the gateway hold.
	MaxBodyBytes int64 `envconfig:"SHOPFN_GATEWAY_MAX_BODY_BYTES" default:"65536"`
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://shop.example.com"; "*" allows any). Empty: no cross-origin
	// browser calls. A request carrying another Origin is refused with 403.
	CORSOrigins []string `envconfig:"SHOPFN_GATEWAY_CORS_ORIGINS"`
	// CallTimeout bounds a unary call to a service when the client sent no
	// Grpc-Timeout header. CreateOrder runs the whole saga within its call
	// (each step bounded by the order service's 5 s step timeout), hence
	// more than the 5 s default of service-to-service calls.
	CallTimeout time.Duration `envconfig:"SHOPFN_GATEWAY_CALL_TIMEOUT" default:"15s"`
}

// Main runs the deployable as a container: configuration from the
// environment, logs on stdout, the listener on $PORT.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return serve.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, log *slog.Logger, lis net.Listener) error {
		return Run(ctx, cfg, log, lis)
	})
}

// Timeouts of the HTTP server. Headers must arrive promptly (a client that
// dribbles them holds a connection for nothing); bodies are small and
// bounded by MaxBodyBytes. There is no write timeout: WatchOrder streams for
// as long as the order changes, and the platform's request timeout bounds
// it in the cloud.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// idleTimeout closes keep-alive connections nobody uses, as the gRPC
	// servers do after 5 minutes.
	idleTimeout = 5 * time.Minute
	// maxHeaderBytes: a bearer token and the usual headers take a few KB.
	maxHeaderBytes = 64 << 10
)

// Run serves the gateway on lis until ctx ends, then drains: no new
// requests, open ones get the shutdown grace, streams still open after it
// are closed.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	h, closeBackends, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeBackends()

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// h2c, for clients and platforms that speak HTTP/2 end to end.
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// The first token check would otherwise pay for building Ed25519's
	// tables on the request path.
	go auth.Warm()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve: %w", Name, err)
	case <-ctx.Done():
	}
	log.Info("draining", "grace", cfg.ShutdownGrace.String())
	grace, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		log.Warn("grace period over: closing open requests")
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", Name, err)
	}
	return nil
}

// backend is one service behind the gateway.
type backend struct {
	name     string
	addr     string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
	// idempotent are the methods the channel may retry (on Unavailable):
	// reads, and writes that are idempotent by design or by key.
	idempotent []string
}

func backends(cfg Config) []backend {
	return []backend{
		{"user", cfg.UserAddr, userv1.RegisterUserServiceHandler, []string{
			userv1.UserService_GetUser_FullMethodName,
			userv1.UserService_UpdateProfile_FullMethodName,
		}},
		{"catalog", cfg.CatalogAddr, catalogv1.RegisterCatalogServiceHandler, []string{
			catalogv1.CatalogService_GetProduct_FullMethodName,
			catalogv1.CatalogService_ListProducts_FullMethodName,
			// Guarded by its etag: a repeat after success fails STALE_ETAG.
			catalogv1.CatalogService_UpdateProduct_FullMethodName,
		}},
		{"inventory", cfg.InventoryAddr, inventoryv1.RegisterInventoryServiceHandler, []string{
			inventoryv1.InventoryService_GetStock_FullMethodName,
			inventoryv1.InventoryService_SetStock_FullMethodName,
		}},
		{"payment", cfg.PaymentAddr, paymentv1.RegisterPaymentServiceHandler, []string{
			paymentv1.PaymentService_GetPayment_FullMethodName,
		}},
		{"order", cfg.OrderAddr, orderv1.RegisterOrderServiceHandler, []string{
			// Idempotent per the client's idempotency_key.
			orderv1.OrderService_CreateOrder_FullMethodName,
			orderv1.OrderService_GetOrder_FullMethodName,
			orderv1.OrderService_ListOrders_FullMethodName,
			orderv1.OrderService_CancelOrder_FullMethodName,
		}},
		{"support", cfg.SupportAddr, supportv1.RegisterSupportServiceHandler, []string{
			supportv1.SupportService_History_FullMethodName,
		}},
	}
}

// New returns the gateway's HTTP handler and a function that closes its
// connections to the services. It does no network I/O: the connections are
// made by the first call that needs them.
func New(ctx context.Context, cfg Config, log *slog.Logger) (http.Handler, func(), error) {
	tel, err := telemetry.Setup(ctx, Name, cfg.Telemetry)
	if err != nil {
		return nil, nil, err
	}
	keys, err := auth.LoadKeys(cfg.Auth, cfg.DataDir)
	if err != nil {
		return nil, nil, errors.Join(err, tel.Shutdown(ctx))
	}
	g := &gateway{
		cfg:      cfg,
		log:      log,
		verifier: keys.NewVerifier(cfg.Auth),
		tracer:   tel.Tracer.Tracer("github.com/shopfn/shopfn/functions/gateway"),
		prop:     tel.Propagator,
		origins:  newOrigins(cfg.CORSOrigins),
	}
	if cfg.RateLimit > 0 {
		g.limiter = auth.NewLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	g.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newMarshaler()),
		runtime.WithErrorHandler(g.handleError),
		runtime.WithStreamErrorHandler(g.streamError),
		runtime.WithRoutingErrorHandler(g.handleRoutingError),
		// Nothing from the request's headers becomes metadata but the
		// bearer token (always forwarded by grpc-gateway), the request id
		// and the trace context (both set by the gateway itself), and the
		// client chain in x-forwarded-for.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(requestMetadata),
		// The services' response metadata stays internal.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithDisableHTTPMethodOverride(),
	)
	// grpc-gateway keeps the query parser in a package variable, so it is
	// set once per process (the same for every gateway), before any mux
	// serves.
	setQueryParser.Do(func() { runtime.NewServeMux(runtime.SetQueryParameterParser(&strictQuery{})) })

	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, cc := range conns {
			cc.Close()
		}
		tel.Shutdown(context.Background())
	}
	for _, b := range backends(cfg) {
		cc, err := dial.Dial(b.addr, dial.Options{
			Idempotent:     b.idempotent,
			DefaultTimeout: cfg.CallTimeout,
			IDTokens:       cfg.IDTokens && strings.HasPrefix(b.addr, "https://"),
			TracerProvider: tel.Tracer, MeterProvider: tel.Meter, Propagators: tel.Propagator,
			PropagateOnly: !tel.Exports(),
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: dial %s at %s: %w", Name, b.name, b.addr, err)
		}
		conns = append(conns, cc)
		if err := b.register(ctx, g.mux, cc); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: register %s: %w", Name, b.name, err)
		}
	}
	return g, closeAll, nil
}

// newMarshaler is the JSON of the API: proto field names (the protobuf JSON
// mapping's json_name is the other choice; parsers accept both), every
// field present even when it holds its zero value (so clients need no
// defaults table), enums by name, and unknown fields refused
// (InvalidArgument) rather than silently dropped.
func newMarshaler() runtime.Marshaler {
	return &marshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// marshaler is runtime.JSONPb whose server streams are labelled as
// newline-delimited JSON.
type marshaler struct{ runtime.JSONPb }

// StreamContentType implements runtime.StreamContentType.
func (*marshaler) StreamContentType(any) string { return "application/x-ndjson" }

// setQueryParser installs strictQuery.
var setQueryParser sync.Once

// strictQuery is grpc-gateway's query parser refusing parameters that name
// no field of the request (InvalidArgument), as unknown JSON fields are
// refused: a misspelt filter ("?pagesize=5") must not be silently ignored.
type strictQuery struct{ runtime.DefaultQueryParser }

// Parse implements runtime.QueryParameterParser.
func (q *strictQuery) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	for key := range values {
		if !knownField(msg.ProtoReflect().Descriptor(), key) {
			return fmt.Errorf("unknown query parameter %q", key)
		}
	}
	return q.DefaultQueryParser.Parse(msg, values, filter)
}

// knownField reports whether key ("page_size", "price.currency_code",
// "labels[k]") names a field of md by its proto or JSON name.
func knownField(md protoreflect.MessageDescriptor, key string) bool {
	if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
		key = key[:i]
	}
	parts := strings.Split(key, ".")
	for i, name := range parts {
		if md == nil {
			return false
		}
		fd := md.Fields().ByTextName(name)
		if fd == nil {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return false
		}
		if i < len(parts)-1 && fd.Cardinality() == protoreflect.Repeated {
			return false
		}
		md = fd.Message()
	}
	return true
}
