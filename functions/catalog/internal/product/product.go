// Package product is the catalog service's domain: products, their prices
// and images, and the rules for reading and changing them.
package product

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"gocloud.dev/blob"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

// Money is an amount in minor units of one ISO 4217 currency.
type Money struct {
	Currency string
	Minor    int64
}

// Draft holds the writable fields of a product. Drafts are comparable: two
// equal drafts describe the same product.
type Draft struct {
	SKU         string
	Name        string
	Description string
	Category    string
	Price       Money
	Active      bool
}

// Product is an item for sale.
type Product struct {
	ID string
	Draft
	Images []Image
	// Revision counts the committed changes; it is the etag.
	Revision int64
	Created  time.Time
	Updated  time.Time
}

// ETag is the product's opaque version for optimistic concurrency.
func (p Product) ETag() string { return strconv.FormatInt(p.Revision, 10) }

// ImageState says whether an image's variants exist.
type ImageState int

// The image states.
const (
	ImageProcessing ImageState = iota + 1 // uploaded; variants being made
	ImageReady                            // every variant is written
	ImageFailed                           // the original could not be processed
)

// Image is one uploaded original and its variants.
type Image struct {
	// ID is the content hash of the original.
	ID          string
	Object      string
	ContentType string
	Size        int64
	State       ImageState
	// Since is when the image entered its state (zero for images recorded
	// before the catalog kept it: the product's update time stands in).
	Since    time.Time
	Variants []Variant
	Failure  string
}

// ProcessingSince is the earliest Since of p's PROCESSING images (zero
// Since counting as p.Updated), and false when none is processing. Stores
// keep it queryable for FailStalledImages.
func (p Product) ProcessingSince() (time.Time, bool) {
	var first time.Time
	found := false
	for _, im := range p.Images {
		if im.State != ImageProcessing {
			continue
		}
		if since := p.imageSince(im); !found || since.Before(first) {
			first, found = since, true
		}
	}
	return first, found
}

// imageSince is when im, an image of p, entered its state.
func (p Product) imageSince(im Image) time.Time {
	if im.Since.IsZero() {
		return p.Updated
	}
	return im.Since
}

// Variant is one processed rendition of an image.
type Variant struct {
	Name        string
	Object      string
	Width       int
	Height      int
	ContentType string
}

// The domain's errors.
var (
	ErrNotFound         = apperr.New(apperr.NotFound, errorsv1.ErrorReason_PRODUCT_NOT_FOUND, "product not found")
	ErrSKUTaken         = apperr.New(apperr.Conflict, errorsv1.ErrorReason_SKU_TAKEN, "sku already in use")
	ErrStaleETag        = apperr.New(apperr.Aborted, errorsv1.ErrorReason_STALE_ETAG, "the product changed since it was read: read it again")
	ErrInvalidPageToken = apperr.New(apperr.Invalid, errorsv1.ErrorReason_INVALID_PAGE_TOKEN, "page token is invalid or belongs to another query")
	// ErrImageNotFound uses PRODUCT_NOT_FOUND: the reason list has no
	// image-specific reason.
	ErrImageNotFound = apperr.New(apperr.NotFound, errorsv1.ErrorReason_PRODUCT_NOT_FOUND, "image not found")
	ErrImageTooLarge = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_IMAGE_TOO_LARGE, "image too large")
	ErrImageType     = apperr.New(apperr.Invalid, errorsv1.ErrorReason_IMAGE_TYPE_UNSUPPORTED, "image type not supported: send JPEG, PNG or WebP")
	// ErrImportTooLong uses MESSAGE_TOO_LARGE, the closest reason to "the
	// stream is too long".
	ErrImportTooLong = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_IMPORT_TOO_LARGE, "import streams are limited to 10,000 items: the first 10,000 were processed, the rest refused")
	// ErrQueryTooBroad is what a store that filters part of a listing in
	// memory (catalogfs) returns when it read its bound of products without
	// filling the page: failing says so, where a short page would silently
	// end the listing.
	ErrQueryTooBroad = apperr.Invalidf("query", "too few of the products read match: add words, a category or a currency")
)

// An Edit changes a product inside the store's transaction. It reports
// whether there is anything to write (nothing is written, and the revision
// stays, when not) and returns the events to record in the same
// transaction.
type Edit func(p *Product) (changed bool, events []outbox.Event, err error)

// Outcome is what an import item did.
type Outcome int

// The outcomes of an import item.
const (
	Failed    Outcome = iota // refused; see the item's error
	Created                  // a new product
	Updated                  // an existing product changed
	Unchanged                // identical to what was stored: nothing written
)

// Merge decides what an import item does to the product stored under its
// SKU (nil when there is none): the product to write and the outcome.
// Unchanged writes nothing.
type Merge func(existing *Product, d Draft) (Product, Outcome)

// ItemResult is the result of one import item in the store.
type ItemResult struct {
	Outcome Outcome
	Err     error
}

// Filter restricts a listing. The zero value lists every active product.
type Filter struct {
	Category string
	// Currency, when set, keeps only prices in that currency; MinPrice and
	// MaxPrice (0: no bound) are in its minor units.
	Currency           string
	MinPrice, MaxPrice int64
	// Words must all appear (as whole words, ignoring case and accents) in
	// the name or the description.
	Words           []string
	IncludeInactive bool
}

// Query is one page of a listing, ordered by name, then id.
type Query struct {
	Filter
	// After, when set, starts the page after the product with the name
	// AfterName and the id AfterID.
	After              bool
	AfterName, AfterID string
	Limit              int
}

// Store keeps products. Implementations translate their driver's errors
// into ErrSKUTaken and ErrNotFound.
type Store interface {
	// Create stores a new product; ErrSKUTaken if the SKU exists.
	Create(ctx context.Context, p Product) error
	// ByID returns a product; ErrNotFound if there is none.
	ByID(ctx context.Context, id string) (Product, error)
	// List returns up to q.Limit products matching q, in order.
	List(ctx context.Context, q Query) ([]Product, error)
	// Update runs edit on the product id inside one transaction and writes
	// the result with its events when edit reports a change.
	Update(ctx context.Context, id string, edit Edit) (Product, error)
	// ProcessingBefore returns the ids of up to limit products with an
	// image PROCESSING since before (see Product.ProcessingSince), the
	// longest-waiting first.
	ProcessingBefore(ctx context.Context, before time.Time, limit int) ([]string, error)
	// Import upserts each draft by SKU, in order, with merge deciding what
	// each does. A failing item fails alone (its ItemResult.Err); the error
	// is for failures of the whole call (the context ended).
	Import(ctx context.Context, drafts []Draft, merge Merge) ([]ItemResult, error)
}

// BucketOpener gives the bucket images are stored in, waiting for it to
// open (store.Opening[*blob.Bucket] is one).
type BucketOpener interface {
	Get(ctx context.Context) (*blob.Bucket, error)
}

// ImageConfig says where originals go and how large they may be.
type ImageConfig struct {
	// BucketURL names the bucket in events (gs://… or file://…).
	BucketURL string
	// MaxBytes is the largest original accepted.
	MaxBytes int64
	// ProcessingTimeout is how long an image may stay PROCESSING before
	// FailStalledImages marks it FAILED.
	ProcessingTimeout time.Duration
}

// Source is the CloudEvents source of the catalog's events.
const Source = "//shopfn/catalog"

// Service implements the catalog rules.
type Service struct {
	store  Store
	bucket BucketOpener
	images ImageConfig
	log    *slog.Logger
	now    func() time.Time
}

// NewService returns the service. log receives item failures of imports,
// which are reported to the client without their cause.
func NewService(s Store, bucket BucketOpener, images ImageConfig, log *slog.Logger) *Service {
	return &Service{store: s, bucket: bucket, images: images, log: log, now: time.Now}
}

// stamp is the current time as the store keeps it.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Create adds a product.
func (s *Service) Create(ctx context.Context, d Draft) (Product, error) {
	now := s.stamp()
	p := Product{ID: store.NewID("prd"), Draft: d, Revision: 1, Created: now, Updated: now}
	if err := s.store.Create(ctx, p); err != nil {
		return Product{}, fmt.Errorf("create product: %w", err)
	}
	return p, nil
}

// mayReadInactive reports whether caller may see inactive products: admins,
// and services (the order service must tell an inactive product from a
// missing one).
func mayReadInactive(caller auth.Principal) bool {
	return caller.IsAdmin() || caller.Role == auth.RoleService
}

// Get returns the product id as caller may see it: an inactive product is
// ErrNotFound for customers and anonymous callers.
func (s *Service) Get(ctx context.Context, caller auth.Principal, id string) (Product, error) {
	p, err := s.store.ByID(ctx, id)
	if err != nil {
		return Product{}, err
	}
	if !p.Active && !mayReadInactive(caller) {
		return Product{}, ErrNotFound
	}
	return p, nil
}

// Patch lists the fields an update changes; nil fields are left alone.
type Patch struct {
	Name        *string
	Description *string
	Category    *string
	Price       *Money
	Active      *bool
}

// Update applies patch to the product id if etag is its current etag
// (ErrStaleETag otherwise, and nothing is written). An update that changes
// nothing keeps the etag.
func (s *Service) Update(ctx context.Context, id, etag string, patch Patch) (Product, error) {
	now := s.stamp()
	return s.store.Update(ctx, id, func(p *Product) (bool, []outbox.Event, error) {
		if p.ETag() != etag {
			return false, nil, ErrStaleETag.With("etag", p.ETag())
		}
		d := p.Draft
		set(&d.Name, patch.Name)
		set(&d.Description, patch.Description)
		set(&d.Category, patch.Category)
		set(&d.Price, patch.Price)
		set(&d.Active, patch.Active)
		if d == p.Draft {
			return false, nil, nil
		}
		p.Draft, p.Revision, p.Updated = d, p.Revision+1, now
		return true, nil, nil
	})
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// SetImages records the variants of an image (READY) or why they could not
// be made (FAILED). Recording what is already recorded changes nothing.
func (s *Service) SetImages(ctx context.Context, productID, imageID string, variants []Variant, failure string) (Product, error) {
	if len(variants) == 0 && failure == "" {
		return Product{}, apperr.Invalidf("variants", "give the variants, or a failure")
	}
	if len(variants) > 0 && failure != "" {
		return Product{}, apperr.Invalidf("failure", "must be empty when variants are given")
	}
	now := s.stamp()
	return s.store.Update(ctx, productID, func(p *Product) (bool, []outbox.Event, error) {
		i := slices.IndexFunc(p.Images, func(im Image) bool { return im.ID == imageID })
		if i < 0 {
			return false, nil, ErrImageNotFound.With("image_id", imageID)
		}
		im := p.Images[i]
		state := ImageReady
		if failure != "" {
			state = ImageFailed
		}
		if im.State == state && im.Failure == failure && slices.Equal(im.Variants, variants) {
			return false, nil, nil
		}
		im.State, im.Failure, im.Variants, im.Since = state, failure, slices.Clone(variants), now
		p.Images = slices.Clone(p.Images)
		p.Images[i] = im
		p.Revision, p.Updated = p.Revision+1, now
		return true, nil, nil
	})
}

// FailStalledImages marks FAILED the images of up to limit products that
// have been PROCESSING for longer than the processing timeout: their event ran out of
// delivery attempts or was lost, so no SetImages will come unless someone
// acts. The failure says so; uploading the image again retries it. It
// returns how many images it failed.
func (s *Service) FailStalledImages(ctx context.Context, limit int) (int, error) {
	timeout := s.images.ProcessingTimeout
	now := s.stamp()
	cutoff := now.Add(-timeout)
	ids, err := s.store.ProcessingBefore(ctx, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("find stalled images: %w", err)
	}
	failure := fmt.Sprintf("processing did not finish within %s; upload the image again to retry", timeout)
	failed := 0
	for _, id := range ids {
		n := 0
		_, err := s.store.Update(ctx, id, func(p *Product) (bool, []outbox.Event, error) {
			n = 0 // edit may run more than once
			images := slices.Clone(p.Images)
			for i, im := range images {
				if im.State != ImageProcessing || p.imageSince(im).After(cutoff) {
					continue
				}
				images[i].State, images[i].Failure, images[i].Variants, images[i].Since = ImageFailed, failure, nil, now
				n++
			}
			if n == 0 {
				return false, nil, nil // finished or uploaded again meanwhile
			}
			p.Images = images
			p.Revision, p.Updated = p.Revision+1, now
			return true, nil, nil
		})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return failed, fmt.Errorf("fail stalled images of %s: %w", id, err)
		}
		failed += n
	}
	return failed, nil
}
