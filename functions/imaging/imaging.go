// Package imaging is the imaging function: on catalog.image.uploaded it
// reads the original from the image bucket, makes the thumbnail, medium and
// watermarked variants (package variants), writes them next to the
// original under names fixed by the product and image ids, and records
// them on the product with the internal SetProductImages call.
//
// It is a CloudEvent function (functions-framework-go) fed by the push
// subscription imaging-catalog-image-uploaded of infra/stack.yaml. A
// duplicate delivery rewrites the same bytes to the same names and records
// the same variants, which changes nothing. An image that can never be
// processed (too many pixels, not an image, truncated) is recorded on the
// product as FAILED and acknowledged; the product is otherwise untouched.
package imaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets under shopfn dev
	_ "gocloud.dev/blob/gcsblob"  // gs:// buckets in the cloud
	"gocloud.dev/gcerrors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/imaging/internal/variants"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/function"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "imaging"

// Config is the imaging function's configuration, read from the
// environment.
type Config struct {
	serve.Platform

	// BucketURL is the catalog's image bucket (a gocloud.dev/blob URL), the
	// same setting the catalog reads; empty means the directory
	// catalog-images in DataDir.
	BucketURL string `envconfig:"SHOPFN_CATALOG_BUCKET"`
	// CatalogAddr is the catalog service: host:port (plaintext) or
	// https://host.
	CatalogAddr string `envconfig:"SHOPFN_CATALOG_ADDR" default:"localhost:9002"`
	// MaxPixels refuses images declaring more pixels (before decoding).
	MaxPixels int64 `envconfig:"SHOPFN_IMAGING_MAX_PIXELS" default:"40000000"`
	// MaxBytes refuses originals larger than this (the catalog's upload cap).
	MaxBytes int64 `envconfig:"SHOPFN_IMAGING_MAX_BYTES" default:"20971520"`
	// Watermark is the text on the watermarked variant.
	Watermark string `envconfig:"SHOPFN_IMAGING_WATERMARK" default:"shopfn"`
}

// Main runs the function as a container.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return function.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, d *serve.Deployment, log *slog.Logger) (events.Handler, error) {
		f, err := Open(ctx, cfg, d, log)
		if err != nil {
			return nil, err
		}
		return f.Handle, nil
	})
}

// Function handles catalog.image.uploaded events.
type Function struct {
	catalog  catalogv1.CatalogServiceClient
	bucket   *blob.Bucket
	opts     variants.Options
	maxBytes int64
	log      *slog.Logger
}

// Open connects the function to the catalog (with d's service credentials)
// and the image bucket. The bucket closes with ctx.
func Open(ctx context.Context, cfg Config, d *serve.Deployment, log *slog.Logger) (*Function, error) {
	creds, err := d.ServiceCredentials()
	if err != nil {
		return nil, err
	}
	cc, err := d.Dial(cfg.CatalogAddr, []string{catalogv1.CatalogService_SetProductImages_FullMethodName}, creds)
	if err != nil {
		return nil, err
	}
	u, err := cfg.Bucket(cfg.BucketURL, "catalog-images")
	if err != nil {
		return nil, err
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open image bucket: %w", err)
	}
	context.AfterFunc(ctx, func() { b.Close() })
	return &Function{
		catalog:  catalogv1.NewCatalogServiceClient(cc),
		bucket:   b,
		opts:     variants.Options{MaxPixels: cfg.MaxPixels, Watermark: cfg.Watermark},
		maxBytes: cfg.MaxBytes,
		log:      log,
	}, nil
}

// Handle makes and records the variants of an uploaded image.
func (f *Function) Handle(ctx context.Context, m events.Message) error {
	if m.Type != outbox.TypeImageUploaded {
		return events.Permanent(fmt.Errorf("imaging takes %s events, not %q", outbox.TypeImageUploaded, m.Type))
	}
	var ev eventsv1.ImageUploaded
	if err := m.Decode(&ev); err != nil {
		return err
	}
	if ev.GetProductId() == "" || ev.GetImageId() == "" || !strings.HasPrefix(ev.GetObject(), "products/") {
		return events.Permanent(fmt.Errorf("image event %s lacks a product, an image or a product object", m.ID))
	}
	src, err := f.read(ctx, ev.GetObject())
	if err == nil {
		var vs []variants.Variant
		vs, err = variants.Make(ctx, src, f.opts)
		if err == nil {
			return f.store(ctx, &ev, vs)
		}
	}
	if !events.IsPermanent(err) && !permanentImage(err) {
		return err
	}
	// Record why on the product, so the shop sees it; then acknowledge.
	if rerr := f.record(ctx, &catalogv1.SetProductImagesRequest{ProductId: ev.GetProductId(), ImageId: ev.GetImageId(), Failure: failure(err)}); rerr != nil {
		return rerr
	}
	return events.Permanent(err)
}

// read returns the original, refusing one over the size cap before reading
// it.
func (f *Function) read(ctx context.Context, object string) ([]byte, error) {
	attrs, err := f.bucket.Attributes(ctx, object)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, events.Permanent(fmt.Errorf("original %s is missing", object))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", object, err)
	}
	if attrs.Size > f.maxBytes {
		return nil, events.Permanent(fmt.Errorf("original %s has %d bytes, over the %d byte cap", object, attrs.Size, f.maxBytes))
	}
	b, err := f.bucket.ReadAll(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", object, err)
	}
	return b, nil
}

// store writes the variants next to the original and records them.
func (f *Function) store(ctx context.Context, ev *eventsv1.ImageUploaded, vs []variants.Variant) error {
	dir := path.Dir(ev.GetObject())
	req := &catalogv1.SetProductImagesRequest{ProductId: ev.GetProductId(), ImageId: ev.GetImageId()}
	for _, v := range vs {
		object := dir + "/" + v.Name + extension(v.ContentType)
		if err := f.bucket.WriteAll(ctx, object, v.Data, &blob.WriterOptions{ContentType: v.ContentType}); err != nil {
			return fmt.Errorf("write %s: %w", object, err)
		}
		req.Variants = append(req.Variants, &catalogv1.ImageVariant{
			Name: v.Name, Object: object, Width: int32(v.Width), Height: int32(v.Height), ContentType: v.ContentType,
		})
	}
	return f.record(ctx, req)
}

func (f *Function) record(ctx context.Context, req *catalogv1.SetProductImagesRequest) error {
	_, err := f.catalog.SetProductImages(ctx, req)
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated:
		// The product or image is gone, or the call is refused: retrying
		// cannot help.
		return events.Permanent(fmt.Errorf("set images of %s: %w", req.GetProductId(), err))
	default:
		return fmt.Errorf("set images of %s: %w", req.GetProductId(), err)
	}
}

// permanentImage reports the failures of the image itself.
func permanentImage(err error) bool {
	return errors.Is(err, variants.ErrTooLarge) || errors.Is(err, variants.ErrUnsupported) || errors.Is(err, variants.ErrCorrupt)
}

// failure is the text recorded on the product: the kind of failure, not
// internals.
func failure(err error) string {
	switch {
	case errors.Is(err, variants.ErrTooLarge):
		return "the image has too many pixels"
	case errors.Is(err, variants.ErrUnsupported):
		return "the file is not a JPEG, PNG, GIF or WebP image"
	case errors.Is(err, variants.ErrCorrupt):
		return "the image is truncated or corrupt"
	}
	return "the original could not be read"
}

func extension(contentType string) string {
	switch contentType {
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	}
	return ".jpg"
}
