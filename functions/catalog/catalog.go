// Package catalog is the catalog deployable: products, their prices, search
// and image uploads.
//
// The same code runs as its own container (functions/catalog/cmd), in-process
// under `shopfn dev`, and in tests: Run takes a listener and stops when its
// context ends.
package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/gcsblob"  // gs:// buckets in the cloud

	"github.com/shopfn/shopfn/functions/catalog/internal/catalogapi"
	"github.com/shopfn/shopfn/functions/catalog/internal/catalogdb"
	"github.com/shopfn/shopfn/functions/catalog/internal/catalogfs"
	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	opsv1 "github.com/shopfn/shopfn/proto/shopfn/ops/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/store"
)

// Name is the deployable's name.
const Name = "catalog"

// Config is the catalog deployable's configuration, read from the
// environment.
type Config struct {
	serve.Platform
	relay.Outbox

	// Database is the SQLite file; empty means catalog.db in DataDir. With
	// SHOPFN_STORE=firestore, the products are in the Firestore database
	// FirestoreDatabaseName("catalog") instead, and the caches are off
	// (other instances write too).
	Database string `envconfig:"SHOPFN_CATALOG_DB"`
	// CacheSize is how many products read by id are kept in memory (0:
	// none). A product is about a kilobyte.
	CacheSize int `envconfig:"SHOPFN_CATALOG_CACHE_SIZE" default:"10000"`
	// PageCacheSize is how many listing pages are kept in memory (0: none).
	// A page of 20 is about 20 KB; any write empties this cache.
	PageCacheSize int `envconfig:"SHOPFN_CATALOG_PAGE_CACHE_SIZE" default:"256"`
	// BucketURL is where image originals go (a gocloud.dev/blob URL); empty
	// means the directory catalog-images in DataDir, created if missing.
	BucketURL string `envconfig:"SHOPFN_CATALOG_BUCKET"`
	// MaxImageBytes is the largest image upload accepted (20 MiB).
	MaxImageBytes int64 `envconfig:"SHOPFN_CATALOG_MAX_IMAGE_BYTES" default:"20971520"`
	// ImageProcessingTimeout is how long an image may stay PROCESSING
	// before FailStalledImages (on a schedule) marks it FAILED. It must
	// exceed the imaging subscription's whole retry budget (infra/stack.yaml:
	// 5 attempts of up to 120 s with backoff up to 60 s, about 14 minutes),
	// or an image still being retried is failed (its variants, if they
	// come, are recorded all the same).
	ImageProcessingTimeout time.Duration `envconfig:"SHOPFN_IMAGE_PROCESSING_TIMEOUT" default:"1h"`
}

// Policy is who may call which method.
func Policy() auth.Policy {
	return auth.Policy{
		catalogv1.CatalogService_CreateProduct_FullMethodName:      auth.Admin,
		catalogv1.CatalogService_GetProduct_FullMethodName:         auth.Public,
		catalogv1.CatalogService_ListProducts_FullMethodName:       auth.Public,
		catalogv1.CatalogService_UpdateProduct_FullMethodName:      auth.Admin,
		catalogv1.CatalogService_BulkImportProducts_FullMethodName: auth.Admin,
		catalogv1.CatalogService_UploadProductImage_FullMethodName: auth.Admin,
		catalogv1.CatalogService_SetProductImages_FullMethodName:   auth.Internal,
		catalogv1.CatalogService_FailStalledImages_FullMethodName:  auth.Internal,
		opsv1.OutboxService_Sweep_FullMethodName:                   auth.Internal,
	}
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

// productStore is what Run needs of a store: catalogdb.Store (SQLite,
// the default) or catalogfs.Store (SHOPFN_STORE=firestore).
type productStore interface {
	product.Store
	serve.Dependency
	// Outbox returns the outbox the store's events go to, for the relay.
	Outbox(ctx context.Context) (outbox.Store, error)
	Close() error
}

// Run serves the catalog service on lis until ctx ends. Products are kept
// in SQLite, or in Firestore when cfg.Store says so.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	useFirestore, err := cfg.UsesFirestore()
	if err != nil {
		return err
	}
	// The database and the bucket open while the rest starts; calls wait
	// for them.
	var db productStore
	if useFirestore {
		db = catalogfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name))
	} else {
		db = catalogdb.Open(ctx, cfg.DataFile(cfg.Database, "catalog.db"), cfg.CacheSize, cfg.PageCacheSize)
	}
	defer db.Close()
	bucketURL, err := cfg.Bucket(cfg.BucketURL, "catalog-images")
	if err != nil {
		return err
	}
	bucket := store.InBackground(func() (*blob.Bucket, error) {
		b, err := blob.OpenBucket(ctx, bucketURL)
		if err != nil {
			return nil, fmt.Errorf("open image bucket: %w", err)
		}
		return b, nil
	})
	defer func() {
		if b, err := bucket.Wait(); err == nil {
			b.Close()
		}
	}()

	d, err := serve.Start(ctx, Name, cfg.Platform, log, Policy())
	if err != nil {
		return err
	}
	defer d.Close()
	svc := product.NewService(db, bucket, product.ImageConfig{BucketURL: bucketURL, MaxBytes: cfg.MaxImageBytes, ProcessingTimeout: cfg.ImageProcessingTimeout}, log)
	catalogv1.RegisterCatalogServiceServer(d.Server, catalogapi.New(svc))
	events := relay.Start(ctx, cfg.Outbox, log, db.Outbox)
	defer events.Close()
	opsv1.RegisterOutboxServiceServer(d.Server, events)
	return d.Server.Serve(ctx, lis, db, bucket)
}

// bucketURL is the configured bucket, or a file bucket in the data dir
// (created on open; temporary files next to the objects, since the system
// temp dir may be on another device and fileblob renames them into place).
