package targets

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// gatewayEnv keeps the gateway's per-client rate limit on (its cost is
// measured) but high enough that one load generator is never throttled.
var gatewayEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// GatewayGetProduct is the HTTP/JSON gateway in front of the catalog of
// CatalogGet (catalogProducts products). Probe and load are an anonymous
// GET /v1/products/{id}: the gateway's edge checks, JSON, and the gRPC call
// to the catalog. The catalog runs inside the benchmark tool (started by
// Prepare), so server CPU is the gateway process's alone while rps is the
// pair's; compare with -ref catalog-get, GetProduct straight over gRPC.
//
// The client speaks HTTP/2 without TLS (h2c) on one connection per -conns,
// as the gRPC targets do, so the figures compare the protocols and not
// connection counts; gateway-get-product-http1 is the same over HTTP/1.1
// keep-alive connections, as most browsers and tools call.
func GatewayGetProduct() benchkit.Target {
	return gatewayGetProduct("gateway-get-product", true)
}

// GatewayGetProductHTTP1 is GatewayGetProduct with an HTTP/1.1 client: one
// keep-alive connection per concurrent request.
func GatewayGetProductHTTP1() benchkit.Target {
	return gatewayGetProduct("gateway-get-product-http1", false)
}

func gatewayGetProduct(name string, h2c bool) benchkit.Target {
	var productID string
	return benchkit.Target{
		Name:    name,
		Package: "./functions/gateway/cmd",
		Env:     gatewayEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			ids, err := seedCatalog(ctx, scratch)
			if err != nil {
				return nil, err
			}
			productID = ids[len(ids)/2]
			addr, err := startCatalog(ctx, filepath.Join(scratch, "data"))
			if err != nil {
				return nil, err
			}
			// The gateway only verifies tokens: it gets the public key, as
			// in the cloud, and no data directory to write a key into.
			keys, err := auth.LoadKeys(auth.Config{DevKey: true}, filepath.Join(scratch, "data"))
			if err != nil {
				return nil, err
			}
			env := []string{
				"SHOPFN_CATALOG_ADDR=" + addr,
				"SHOPFN_JWT_DEV_KEY=false",
				"SHOPFN_JWT_PUBLIC_KEYS=" + base64.StdEncoding.EncodeToString(keys.Public[0]),
			}
			return func(runDir string) ([]string, error) {
				return append(env, "SHOPFN_DATA_DIR="+runDir), nil
			}, nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			// A new client per attempt: nothing is reused before the
			// gateway first answers.
			return getProduct(ctx, newHTTPClient(h2c), cc.Target(), productID)
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := newHTTPClient(h2c)
			return func(ctx context.Context) error {
				return getProduct(ctx, client, cc.Target(), productID)
			}, nil
		},
	}
}

// newHTTPClient returns a client with its own connections: one h2c
// connection, or a pool of HTTP/1.1 keep-alive connections large enough for
// every worker.
func newHTTPClient(h2c bool) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 1024,
	}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

// getProduct is one GET /v1/products/{id} on the gateway at addr
// (host:port, the target of the harness's gRPC connection).
func getProduct(ctx context.Context, client *http.Client, addr, productID string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/products/"+productID, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/products/%s = %d %s", productID, resp.StatusCode, body)
	}
	return nil
}

// startCatalog runs the catalog service in this process on dataDir until
// ctx ends, with a rate limit no load reaches (every call comes from the
// gateway's one address), and returns its address.
func startCatalog(ctx context.Context, dataDir string) (string, error) {
	var cfg catalog.Config
	if err := config.Load(&cfg); err != nil {
		return "", err
	}
	cfg.DataDir = dataDir
	cfg.RateLimit, cfg.RateBurst = 1e9, 1_000_000_000
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go catalog.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	return lis.Addr().String(), nil
}
