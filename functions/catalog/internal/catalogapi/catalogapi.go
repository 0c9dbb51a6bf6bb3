// Package catalogapi is the catalog service's gRPC transport: it turns
// requests into product calls and products into responses.
package catalogapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// Server implements catalogv1.CatalogServiceServer.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer
	svc     *product.Service
	encoded encoded
}

// New returns the transport for svc.
func New(svc *product.Service) *Server { return &Server{svc: svc} }

// encodedMax bounds the cached product encodings: a large shop's
// catalogue. When full, the cache starts again empty (simple, and rare).
const encodedMax = 20_000

// encoded keeps, for the latest revision of each product served, the
// product's wire encoding as a response field (its tag, length and
// message), so that GetProduct and ListProducts neither build nor encode
// the same product on every call: encoding a page of 20 was a third of the
// catalog's CPU per ListProducts even with the messages cached.
//
// The encodings go out as the response message's unknown fields, which
// protobuf marshals verbatim and a receiver decodes as the product field
// like any other encoding of it (a field may come in any order). So in
// this process those responses' product fields stay empty, and nothing
// here may read them: the gateway and every client receive them over gRPC.
//
// Every change to a product bumps its revision, so an id and a revision
// name one content.
type encoded struct {
	mu sync.RWMutex
	m  map[string]encodedProduct
	// pages keeps the last encoding of each page asked for, by request. It
	// is used only when the store lists the same products at the same
	// revisions again (checked on every call), so it can never be stale;
	// it saves assembling the same page (a tenth of a cached ListProducts).
	pages map[product.ListRequest]encodedPage
}

type encodedProduct struct {
	revision int64
	wire     []byte
}

// pagesMax bounds the cached pages; when full, the cache starts again.
const pagesMax = 1024

type encodedPage struct {
	ids       []string
	revisions []int64
	next      string
	wire      []byte
}

// holds reports whether the page lists exactly ps, then next.
func (pg encodedPage) holds(ps []product.Product, next string) bool {
	if len(pg.ids) != len(ps) || pg.next != next {
		return false
	}
	for i, p := range ps {
		if pg.ids[i] != p.ID || pg.revisions[i] != p.Revision {
			return false
		}
	}
	return true
}

// productField is the number of both GetProductResponse.product and
// ListProductsResponse.products, so that one cached encoding serves both.
var productField = func() protowire.Number {
	get := (&catalogv1.GetProductResponse{}).ProtoReflect().Descriptor().Fields().ByName("product")
	list := (&catalogv1.ListProductsResponse{}).ProtoReflect().Descriptor().Fields().ByName("products")
	if get.Number() != list.Number() {
		panic("catalogapi: GetProductResponse.product and ListProductsResponse.products must share a field number")
	}
	return get.Number()
}()

// of returns the encoded field of p, from the cache when it holds p's
// revision.
func (c *encoded) of(p product.Product) ([]byte, error) {
	c.mu.RLock()
	e, ok := c.m[p.ID]
	c.mu.RUnlock()
	if ok && e.revision == p.Revision {
		return e.wire, nil
	}
	msg, err := proto.Marshal(toProto(p))
	if err != nil {
		return nil, fmt.Errorf("encode product %s: %w", p.ID, err)
	}
	wire := protowire.AppendTag(nil, productField, protowire.BytesType)
	wire = protowire.AppendBytes(wire, msg)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= encodedMax {
		c.m = make(map[string]encodedProduct)
	}
	if cur, ok := c.m[p.ID]; !ok || cur.revision < p.Revision {
		c.m[p.ID] = encodedProduct{revision: p.Revision, wire: wire}
	}
	c.mu.Unlock()
	return wire, nil
}

// page returns the response listing ps, its products already encoded
// (see encoded).
func (c *encoded) page(key product.ListRequest, ps []product.Product, next string) (*catalogv1.ListProductsResponse, error) {
	resp := &catalogv1.ListProductsResponse{NextPageToken: next}
	c.mu.RLock()
	pg, ok := c.pages[key]
	c.mu.RUnlock()
	if ok && pg.holds(ps, next) {
		resp.ProtoReflect().SetUnknown(pg.wire)
		return resp, nil
	}
	pg = encodedPage{ids: make([]string, len(ps)), revisions: make([]int64, len(ps)), next: next}
	for i, p := range ps {
		e, err := c.of(p)
		if err != nil {
			return nil, err
		}
		pg.wire = append(pg.wire, e...)
		pg.ids[i], pg.revisions[i] = p.ID, p.Revision
	}
	c.mu.Lock()
	if c.pages == nil || len(c.pages) >= pagesMax {
		c.pages = make(map[product.ListRequest]encodedPage)
	}
	c.pages[key] = pg
	c.mu.Unlock()
	resp.ProtoReflect().SetUnknown(pg.wire)
	return resp, nil
}

// CreateProduct implements catalogv1.CatalogServiceServer.
func (s *Server) CreateProduct(ctx context.Context, req *catalogv1.CreateProductRequest) (*catalogv1.CreateProductResponse, error) {
	p, err := s.svc.Create(ctx, draftFromProto(req.GetProduct()))
	if err != nil {
		return nil, err
	}
	return &catalogv1.CreateProductResponse{Product: toProto(p)}, nil
}

// GetProduct implements catalogv1.CatalogServiceServer.
func (s *Server) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	caller, _ := auth.FromContext(ctx)
	p, err := s.svc.Get(ctx, caller, req.GetProductId())
	if err != nil {
		return nil, err
	}
	wire, err := s.encoded.of(p)
	if err != nil {
		return nil, err
	}
	resp := &catalogv1.GetProductResponse{}
	resp.ProtoReflect().SetUnknown(wire) // the product, encoded (see encoded)
	return resp, nil
}

// ListProducts implements catalogv1.CatalogServiceServer.
func (s *Server) ListProducts(ctx context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	caller, _ := auth.FromContext(ctx)
	r := product.ListRequest{
		Category:        req.GetCategory(),
		Currency:        req.GetCurrencyCode(),
		MinPrice:        req.GetMinPriceMinor(),
		MaxPrice:        req.GetMaxPriceMinor(),
		Query:           req.GetQuery(),
		IncludeInactive: req.GetIncludeInactive(),
		PageSize:        int(req.GetPageSize()),
		PageToken:       req.GetPageToken(),
	}
	ps, next, err := s.svc.List(ctx, caller, r)
	if err != nil {
		return nil, err
	}
	return s.encoded.page(r, ps, next)
}

// maskable are the ProductDraft paths UpdateProduct may change.
const maskable = "name, description, category, price, active"

// UpdateProduct implements catalogv1.CatalogServiceServer. The request's
// validation skips the draft (unmasked fields may be empty), so the masked
// fields are checked here with the draft's own rules.
func (s *Server) UpdateProduct(ctx context.Context, req *catalogv1.UpdateProductRequest) (*catalogv1.UpdateProductResponse, error) {
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, apperr.Invalidf("update_mask", "name at least one path (%s)", maskable)
	}
	d := req.GetProduct()
	var patch product.Patch
	masked := map[string]bool{}
	for _, path := range paths {
		switch path {
		case "name":
			patch.Name = new(d.GetName())
		case "description":
			patch.Description = new(d.GetDescription())
		case "category":
			patch.Category = new(d.GetCategory())
		case "price":
			patch.Price = new(money(d.GetPrice()))
		case "active":
			patch.Active = new(d.GetActive())
		case "sku":
			return nil, apperr.Invalidf("update_mask", "the sku cannot change")
		default:
			return nil, apperr.Invalidf("update_mask", "unknown path %q (allowed: %s)", path, maskable)
		}
		masked[path] = true
	}
	if err := validateMasked(d, masked); err != nil {
		return nil, err
	}
	p, err := s.svc.Update(ctx, req.GetProductId(), req.GetEtag(), patch)
	if err != nil {
		return nil, err
	}
	return &catalogv1.UpdateProductResponse{Product: toProto(p)}, nil
}

// validateMasked runs the draft's rules and keeps the violations of masked
// fields, named by their path in the request ("product.price.currency_code").
func validateMasked(d *catalogv1.ProductDraft, masked map[string]bool) error {
	err := apperr.Validate(d)
	if err == nil {
		return nil
	}
	var all *apperr.Error
	if !errors.As(err, &all) {
		return err
	}
	var fields []apperr.FieldViolation
	for _, f := range all.Fields {
		root, _, _ := strings.Cut(f.Field, ".")
		if masked[root] {
			fields = append(fields, apperr.FieldViolation{Field: "product." + f.Field, Description: f.Description})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + ": " + f.Description
	}
	return &apperr.Error{Kind: apperr.Invalid, Reason: errorsv1.ErrorReason_INVALID_ARGUMENT,
		Message: "invalid request: " + strings.Join(parts, "; "), Fields: fields}
}

// BulkImportProducts implements catalogv1.CatalogServiceServer. Each item
// is checked here with the draft's rules, on its own: a bad one is reported
// in the response and the stream goes on.
func (s *Server) BulkImportProducts(stream catalogv1.CatalogService_BulkImportProductsServer) error {
	ctx := stream.Context()
	im := s.svc.NewImport()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		d := req.GetProduct()
		var invalid error
		if d == nil {
			invalid = apperr.Invalidf("product", "value is required")
		} else {
			invalid = apperr.Validate(d)
		}
		if err := im.Add(ctx, draftFromProto(d), invalid); err != nil {
			return err
		}
	}
	r, err := im.Finish(ctx)
	if err != nil {
		return err
	}
	resp := &catalogv1.BulkImportProductsResponse{
		Received:  int32(r.Received),
		Created:   int32(r.Created),
		Updated:   int32(r.Updated),
		Unchanged: int32(r.Unchanged),
		Errors:    make([]*catalogv1.ImportError, len(r.Errors)),
	}
	for i, e := range r.Errors {
		resp.Errors[i] = &catalogv1.ImportError{Index: int32(e.Index), Sku: e.SKU, Reason: e.Reason, Message: e.Message}
	}
	return stream.SendAndClose(resp)
}

// UploadProductImage implements catalogv1.CatalogServiceServer: a header,
// then chunks. Any other order is InvalidArgument.
func (s *Server) UploadProductImage(stream catalogv1.CatalogService_UploadProductImageServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return apperr.Invalidf("header", "empty upload: send a header, then the chunks")
	}
	if err != nil {
		return err
	}
	header := first.GetHeader()
	if header == nil {
		return apperr.Invalidf("header", "the first message must be the header")
	}
	next := func() ([]byte, error) {
		m, err := stream.Recv()
		if err != nil {
			return nil, err // io.EOF after the last chunk
		}
		if m.GetHeader() != nil {
			return nil, apperr.Invalidf("header", "only the first message may be a header")
		}
		return m.GetChunk(), nil
	}
	up, err := s.svc.UploadImage(stream.Context(), header.GetProductId(), next)
	if err != nil {
		return err
	}
	return stream.SendAndClose(&catalogv1.UploadProductImageResponse{
		Image: imageProto(up.Image), ContentType: up.ContentType, SizeBytes: up.Size,
	})
}

// SetProductImages implements catalogv1.CatalogServiceServer.
func (s *Server) SetProductImages(ctx context.Context, req *catalogv1.SetProductImagesRequest) (*catalogv1.SetProductImagesResponse, error) {
	variants := make([]product.Variant, len(req.GetVariants()))
	for i, v := range req.GetVariants() {
		variants[i] = product.Variant{Name: v.GetName(), Object: v.GetObject(), Width: int(v.GetWidth()), Height: int(v.GetHeight()), ContentType: v.GetContentType()}
	}
	p, err := s.svc.SetImages(ctx, req.GetProductId(), req.GetImageId(), variants, req.GetFailure())
	if err != nil {
		return nil, err
	}
	return &catalogv1.SetProductImagesResponse{Product: toProto(p)}, nil
}

// stalledImagesLimit is FailStalledImages' limit when the request names
// none.
const stalledImagesLimit = 500

// FailStalledImages implements catalogv1.CatalogServiceServer.
func (s *Server) FailStalledImages(ctx context.Context, req *catalogv1.FailStalledImagesRequest) (*catalogv1.FailStalledImagesResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = stalledImagesLimit
	}
	n, err := s.svc.FailStalledImages(ctx, limit)
	if err != nil {
		return nil, err
	}
	return &catalogv1.FailStalledImagesResponse{Failed: int32(n)}, nil
}

func money(m *commonv1.Money) product.Money {
	return product.Money{Currency: m.GetCurrencyCode(), Minor: m.GetAmountMinor()}
}

func draftFromProto(d *catalogv1.ProductDraft) product.Draft {
	return product.Draft{
		SKU:         d.GetSku(),
		Name:        d.GetName(),
		Description: d.GetDescription(),
		Category:    d.GetCategory(),
		Price:       money(d.GetPrice()),
		Active:      d.GetActive(),
	}
}

var imageStates = map[product.ImageState]catalogv1.ImageState{
	product.ImageProcessing: catalogv1.ImageState_IMAGE_STATE_PROCESSING,
	product.ImageReady:      catalogv1.ImageState_IMAGE_STATE_READY,
	product.ImageFailed:     catalogv1.ImageState_IMAGE_STATE_FAILED,
}

func imageProto(im product.Image) *catalogv1.ProductImage {
	out := &catalogv1.ProductImage{ImageId: im.ID, OriginalObject: im.Object, State: imageStates[im.State], Failure: im.Failure}
	for _, v := range im.Variants {
		out.Variants = append(out.Variants, &catalogv1.ImageVariant{
			Name: v.Name, Object: v.Object, Width: int32(v.Width), Height: int32(v.Height), ContentType: v.ContentType,
		})
	}
	return out
}

func toProto(p product.Product) *catalogv1.Product {
	out := &catalogv1.Product{
		Id:          p.ID,
		Sku:         p.SKU,
		Name:        p.Name,
		Description: p.Description,
		Category:    p.Category,
		Price:       &commonv1.Money{CurrencyCode: p.Price.Currency, AmountMinor: p.Price.Minor},
		Active:      p.Active,
		Etag:        p.ETag(),
		CreateTime:  timestamppb.New(p.Created),
		UpdateTime:  timestamppb.New(p.Updated),
	}
	if len(p.Images) > 0 {
		out.Images = make([]*catalogv1.ProductImage, len(p.Images))
		for i, im := range p.Images {
			out.Images[i] = imageProto(im)
		}
	}
	return out
}
