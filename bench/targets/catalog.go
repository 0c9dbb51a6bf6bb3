package targets

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// catalogProducts is how many products the catalog targets start with: a
// small shop's catalogue, 25 pages of the default size.
const catalogProducts = 500

// catalogEnv keeps the per-caller rate limit on (its cost is measured) but
// high enough that one load generator is never throttled.
var catalogEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// CatalogGet is the catalog deployable on a data directory holding
// catalogProducts products. Probe and load are an anonymous GetProduct: the
// full interceptor chain, the store (its cache) and the response.
func CatalogGet() benchkit.Target {
	var productID string
	return benchkit.Target{
		Name:    "catalog-get",
		Package: "./functions/catalog/cmd",
		Env:     catalogEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			ids, err := seedCatalog(ctx, scratch)
			if err != nil {
				return nil, err
			}
			productID = ids[len(ids)/2]
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := catalogv1.NewCatalogServiceClient(cc).GetProduct(ctx, &catalogv1.GetProductRequest{ProductId: productID})
			return err
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := catalogv1.NewCatalogServiceClient(cc)
			req := &catalogv1.GetProductRequest{ProductId: productID}
			return func(ctx context.Context) error {
				_, err := client.GetProduct(ctx, req)
				return err
			}, nil
		},
	}
}

// CatalogList is CatalogGet whose load is the first page (20 products) of
// an anonymous ListProducts: what a shop's front page asks for.
func CatalogList() benchkit.Target {
	t := CatalogGet()
	t.Name = "catalog-list"
	t.Call = func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
		client := catalogv1.NewCatalogServiceClient(cc)
		req := &catalogv1.ListProductsRequest{PageSize: 20}
		return func(ctx context.Context) error {
			resp, err := client.ListProducts(ctx, req)
			if err == nil && len(resp.GetProducts()) != 20 {
				err = fmt.Errorf("ListProducts returned %d products, want 20", len(resp.GetProducts()))
			}
			return err
		}, nil
	}
	return t
}

// seedCatalog runs the catalog service in this process on scratch/data and
// imports catalogProducts products; it returns their ids.
func seedCatalog(ctx context.Context, scratch string) (ids []string, err error) {
	var cfg catalog.Config
	if err := config.Load(&cfg); err != nil {
		return nil, err
	}
	cfg.DataDir = filepath.Join(scratch, "data")
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	admin, _, err := auth.NewSigner(keys.Private(), cfg.Issuer, cfg.Audience, time.Hour).Issue(auth.Principal{Subject: "bench", Role: auth.RoleAdmin})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- catalog.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis) }()
	defer func() {
		cancel()
		if runErr := <-done; err == nil {
			err = runErr
		}
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	c := catalogv1.NewCatalogServiceClient(cc)
	actx := auth.WithBearer(ctx, admin)
	stream, err := c.BulkImportProducts(actx)
	if err != nil {
		return nil, err
	}
	for i := range catalogProducts {
		d := &catalogv1.ProductDraft{
			Sku:         fmt.Sprintf("BENCH-%04d", i),
			Name:        fmt.Sprintf("Bench product %04d", i),
			Description: "A product of the benchmark catalogue, with a description of ordinary length for a shop.",
			Category:    []string{"kitchen", "garden", "outdoor", "office"}[i%4],
			Price:       &commonv1.Money{CurrencyCode: "EUR", AmountMinor: int64(100 + i)},
			Active:      true,
		}
		if err := stream.Send(&catalogv1.BulkImportProductsRequest{Product: d}); err != nil {
			break
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("seed import: %w", err)
	}
	if resp.GetCreated() != catalogProducts {
		return nil, fmt.Errorf("seed import created %d products, want %d", resp.GetCreated(), catalogProducts)
	}
	var token string
	for {
		page, err := c.ListProducts(ctx, &catalogv1.ListProductsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("seed list: %w", err)
		}
		for _, p := range page.GetProducts() {
			ids = append(ids, p.GetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			return ids, nil
		}
	}
}
