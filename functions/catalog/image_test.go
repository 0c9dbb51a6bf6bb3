package catalog_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/servetest"
)

// picture draws a w×h gradient, different for each seed.
func picture(w, h int, seed uint8) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x) + seed, G: uint8(y), B: seed, A: 255})
		}
	}
	return img
}

func pngBytes(t testing.TB, seed uint8) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, picture(64, 48, seed)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, picture(w, h, 7), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// part is one message of an upload stream.
type part struct {
	header *catalogv1.ImageUploadHeader
	chunk  []byte
}

func header(productID string) part {
	return part{header: &catalogv1.ImageUploadHeader{ProductId: productID, Filename: "photo"}}
}

// chunks splits data into messages of at most size bytes.
func chunks(data []byte, size int) []part {
	var out []part
	for len(data) > 0 {
		n := min(size, len(data))
		out = append(out, part{chunk: data[:n]})
		data = data[n:]
	}
	return out
}

func (e *env) upload(ctx context.Context, parts ...part) (*catalogv1.UploadProductImageResponse, error) {
	stream, err := e.client.UploadProductImage(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		m := &catalogv1.UploadProductImageRequest{}
		if p.header != nil {
			m.Part = &catalogv1.UploadProductImageRequest_Header{Header: p.header}
		} else {
			m.Part = &catalogv1.UploadProductImageRequest_Chunk{Chunk: p.chunk}
		}
		if err := stream.Send(m); err != nil {
			break // the server ended the stream; CloseAndRecv says why
		}
	}
	return stream.CloseAndRecv()
}

// objects lists the files of the image bucket (without fileblob's
// attribute sidecars), relative to it.
func (e *env) objects(t testing.TB) []string {
	t.Helper()
	root := filepath.Join(e.dir, "catalog-images")
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".attrs") {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestUploadImage(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	tests := []struct {
		name  string
		data  []byte
		ctype string
		ext   string
	}{
		{"png", pngBytes(t, 1), "image/png", ".png"},
		{"jpeg", jpegBytes(t, 300, 200), "image/jpeg", ".jpg"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Small chunks, so the sniffed head spans several of them.
			got, err := e.upload(e.admin, append([]part{header(p.GetId())}, chunks(tt.data, 100)...)...)
			if err != nil {
				t.Fatalf("UploadProductImage(%s) = %v", tt.name, err)
			}
			im := got.GetImage()
			if got.GetContentType() != tt.ctype || got.GetSizeBytes() != int64(len(tt.data)) ||
				im.GetState() != catalogv1.ImageState_IMAGE_STATE_PROCESSING || im.GetImageId() == "" ||
				!strings.HasPrefix(im.GetOriginalObject(), "products/"+p.GetId()+"/") || !strings.HasSuffix(im.GetOriginalObject(), tt.ext) {
				t.Fatalf("UploadProductImage(%s) = %v, want %s, %d bytes, PROCESSING, an object under the product", tt.name, got, tt.ctype, len(tt.data))
			}
			stored, err := os.ReadFile(filepath.Join(e.dir, "catalog-images", filepath.FromSlash(im.GetOriginalObject())))
			if err != nil || !bytes.Equal(stored, tt.data) {
				t.Errorf("stored original = %d bytes, %v; want the %d uploaded", len(stored), err, len(tt.data))
			}
			if imgs := e.get(t, p.GetId()).GetImages(); len(imgs) != i+1 || !proto.Equal(imgs[i], im) {
				t.Errorf("product images = %v, want %v last", imgs, im)
			}

			// The event, exactly once, with what imaging needs.
			events := e.events(t)
			if len(events) != i+1 {
				t.Fatalf("outbox = %d rows, want %d", len(events), i+1)
			}
			ev := events[i]
			var data eventsv1.ImageUploaded
			if err := ev.Decode(&data); err != nil {
				t.Fatal(err)
			}
			want := &eventsv1.ImageUploaded{ProductId: p.GetId(), ImageId: im.GetImageId(), Bucket: data.GetBucket(),
				Object: im.GetOriginalObject(), ContentType: tt.ctype, SizeBytes: int64(len(tt.data))}
			if ev.Type != outbox.TypeImageUploaded || ev.OrderingKey != p.GetId() || ev.Subject != p.GetId() ||
				!proto.Equal(&data, want) || !strings.HasPrefix(data.GetBucket(), "file://") {
				t.Errorf("event = %+v %v, want %s for %v in a file:// bucket", ev, &data, outbox.TypeImageUploaded, want)
			}

			// The same bytes again: the same image, no new event, no new object.
			before := e.get(t, p.GetId())
			again, err := e.upload(e.admin, append([]part{header(p.GetId())}, chunks(tt.data, 4096)...)...)
			if err != nil || !proto.Equal(again.GetImage(), im) {
				t.Errorf("UploadProductImage(same bytes) = %v, %v; want %v", again, err, im)
			}
			if n := len(e.events(t)); n != i+1 {
				t.Errorf("outbox after a re-upload = %d rows, want %d", n, i+1)
			}
			if after := e.get(t, p.GetId()); after.GetEtag() != before.GetEtag() {
				t.Errorf("etag after a re-upload = %s, want %s kept", after.GetEtag(), before.GetEtag())
			}
		})
	}
	if objs := e.objects(t); len(objs) != 2 {
		t.Errorf("bucket objects = %v, want the two originals and nothing staged", objs)
	}
}

func TestUploadImageRejects(t *testing.T) {
	const maxBytes = 2000
	e := start(t, func(c *catalog.Config) { c.MaxImageBytes = maxBytes })
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	small := pngBytes(t, 1)
	big := jpegBytes(t, 400, 400)
	if len(small) > maxBytes || len(big) <= 3*maxBytes {
		t.Fatalf("fixtures: png %d bytes, jpeg %d; want <= %d and > %d", len(small), len(big), maxBytes, 3*maxBytes)
	}
	tests := []struct {
		name   string
		ctx    context.Context
		parts  []part
		code   codes.Code
		reason string
	}{
		{"text", e.admin, []part{header(p.GetId()), {chunk: []byte("just some text, not an image at all")}}, codes.InvalidArgument, "IMAGE_TYPE_UNSUPPORTED"},
		{"gif", e.admin, []part{header(p.GetId()), {chunk: []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")}}, codes.InvalidArgument, "IMAGE_TYPE_UNSUPPORTED"},
		{"too large", e.admin, append([]part{header(p.GetId())}, chunks(big, 1000)...), codes.ResourceExhausted, "IMAGE_TOO_LARGE"},
		{"too large in one chunk", e.admin, []part{header(p.GetId()), {chunk: big}}, codes.ResourceExhausted, "IMAGE_TOO_LARGE"},
		{"chunk first", e.admin, append(chunks(small, 100), header(p.GetId())), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"second header", e.admin, []part{header(p.GetId()), {chunk: small[:100]}, header(p.GetId()), {chunk: small[100:]}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no chunk", e.admin, []part{header(p.GetId())}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"nothing", e.admin, nil, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"empty chunk", e.admin, []part{header(p.GetId()), {chunk: []byte{}}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"empty part", e.admin, []part{header(p.GetId()), {}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"header without product", e.admin, []part{header(""), {chunk: small}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"unknown product", e.admin, []part{header("prd_missing"), {chunk: small}}, codes.NotFound, "PRODUCT_NOT_FOUND"},
		{"customer", e.customer, []part{header(p.GetId()), {chunk: small}}, codes.PermissionDenied, "PERMISSION_DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.upload(tt.ctx, tt.parts...)
			if got != nil {
				t.Fatalf("UploadProductImage(%s) = %v, want an error", tt.name, got)
			}
			servetest.WantErr(t, err, tt.code, tt.reason)
			if objs := e.objects(t); len(objs) != 0 {
				t.Errorf("bucket after a refused upload = %v, want empty", objs)
			}
			if n := len(e.events(t)); n != 0 {
				t.Errorf("outbox after a refused upload = %d rows, want 0", n)
			}
			if imgs := e.get(t, p.GetId()).GetImages(); len(imgs) != 0 {
				t.Errorf("product images after a refused upload = %v, want none", imgs)
			}
		})
	}
	// The cap allows what it should.
	if _, err := e.upload(e.admin, header(p.GetId()), part{chunk: small}); err != nil {
		t.Errorf("UploadProductImage(%d bytes, cap %d) = %v", len(small), maxBytes, err)
	}
}

func TestSetProductImages(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	up, err := e.upload(e.admin, header(p.GetId()), part{chunk: pngBytes(t, 3)})
	if err != nil {
		t.Fatal(err)
	}
	imageID := up.GetImage().GetImageId()
	variants := []*catalogv1.ImageVariant{
		{Name: "thumbnail", Object: "products/x/thumb.jpg", Width: 64, Height: 48, ContentType: "image/jpeg"},
		{Name: "medium", Object: "products/x/medium.jpg", Width: 640, Height: 480, ContentType: "image/jpeg"},
	}
	req := &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID, Variants: variants}
	got, err := e.client.SetProductImages(e.service, req)
	if err != nil {
		t.Fatalf("SetProductImages = %v", err)
	}
	im := got.GetProduct().GetImages()[0]
	if im.GetState() != catalogv1.ImageState_IMAGE_STATE_READY || len(im.GetVariants()) != 2 || !proto.Equal(im.GetVariants()[1], variants[1]) {
		t.Fatalf("SetProductImages image = %v, want READY with the variants", im)
	}
	// Idempotent: the same call again writes nothing.
	again, err := e.client.SetProductImages(e.service, req)
	if err != nil || again.GetProduct().GetEtag() != got.GetProduct().GetEtag() {
		t.Errorf("SetProductImages(again) = %v, %v; want etag %s kept", again.GetProduct(), err, got.GetProduct().GetEtag())
	}
	failed, err := e.client.SetProductImages(e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID, Failure: "decode: bad data"})
	if err != nil || failed.GetProduct().GetImages()[0].GetState() != catalogv1.ImageState_IMAGE_STATE_FAILED || failed.GetProduct().GetImages()[0].GetFailure() != "decode: bad data" {
		t.Errorf("SetProductImages(failure) = %v, %v; want FAILED with the reason", failed.GetProduct(), err)
	}

	before := e.get(t, p.GetId())
	bad := []struct {
		name   string
		ctx    context.Context
		req    *catalogv1.SetProductImagesRequest
		code   codes.Code
		reason string
	}{
		{"unknown product", e.service, &catalogv1.SetProductImagesRequest{ProductId: "prd_missing", ImageId: imageID, Failure: "x"}, codes.NotFound, "PRODUCT_NOT_FOUND"},
		{"unknown image", e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: "feed", Failure: "x"}, codes.NotFound, "PRODUCT_NOT_FOUND"},
		{"neither", e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"both", e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID, Variants: variants, Failure: "x"}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad variant", e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID, Variants: []*catalogv1.ImageVariant{{Name: "x", Object: "o", Width: 0, Height: 1}}}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"admin", e.admin, req, codes.PermissionDenied, "PERMISSION_DENIED"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.SetProductImages(tt.ctx, tt.req)
			servetest.WantErr(t, err, tt.code, tt.reason)
			if after := e.get(t, p.GetId()); !proto.Equal(after, before) {
				t.Errorf("product after a refused call = %v, want %v", after, before)
			}
		})
	}
}

// Uploading the bytes of an image whose processing FAILED asks for another
// try: it is PROCESSING again, with a new event; while that try runs, the
// same upload changes nothing.
func TestUploadAgainAfterAFailure(t *testing.T) {
	e := start(t, nil)
	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	data := pngBytes(t, 5)
	up, err := e.upload(e.admin, header(p.GetId()), part{chunk: data})
	if err != nil {
		t.Fatal(err)
	}
	imageID := up.GetImage().GetImageId()
	if _, err := e.client.SetProductImages(e.service, &catalogv1.SetProductImagesRequest{ProductId: p.GetId(), ImageId: imageID, Failure: "decode: bad data"}); err != nil {
		t.Fatal(err)
	}
	for i, wantEvents := range []int{2, 2} {
		again, err := e.upload(e.admin, header(p.GetId()), part{chunk: data})
		if err != nil {
			t.Fatalf("upload %d = %v", i, err)
		}
		im := again.GetImage()
		if im.GetState() != catalogv1.ImageState_IMAGE_STATE_PROCESSING || im.GetFailure() != "" || im.GetImageId() != imageID {
			t.Errorf("upload %d after a failure = %v, want the image PROCESSING again", i, im)
		}
		if imgs := e.get(t, p.GetId()).GetImages(); len(imgs) != 1 || !proto.Equal(imgs[0], im) {
			t.Errorf("product images = %v, want only %v", imgs, im)
		}
		events := e.events(t)
		if len(events) != wantEvents {
			t.Fatalf("outbox after upload %d = %d rows, want %d", i, len(events), wantEvents)
		}
		if events[1].ID == events[0].ID || events[1].Type != outbox.TypeImageUploaded {
			t.Errorf("the retry's event = %+v, want its own id and %s", events[1], outbox.TypeImageUploaded)
		}
	}
}

// An image left PROCESSING longer than the processing timeout (its event
// dead-lettered or lost) is failed by FailStalledImages, which tells why;
// images still within the timeout, and finished ones, are left alone, and
// variants recorded late still count.
func TestFailStalledImages(t *testing.T) {
	fail := func(t *testing.T, e *env, ctx context.Context, limit int32) int32 {
		t.Helper()
		resp, err := e.client.FailStalledImages(ctx, &catalogv1.FailStalledImagesRequest{Limit: limit})
		if err != nil {
			t.Fatalf("FailStalledImages = %v", err)
		}
		return resp.GetFailed()
	}

	t.Run("within the timeout", func(t *testing.T) {
		e := start(t, nil) // the default: an hour
		p := e.create(t, draft("MUG-1", "Red mug", 1250))
		if _, err := e.upload(e.admin, header(p.GetId()), part{chunk: pngBytes(t, 1)}); err != nil {
			t.Fatal(err)
		}
		before := e.get(t, p.GetId())
		if n := fail(t, e, e.service, 0); n != 0 {
			t.Errorf("FailStalledImages failed %d images uploaded just now, want 0", n)
		}
		if after := e.get(t, p.GetId()); !proto.Equal(after, before) {
			t.Errorf("product = %v, want it unchanged: %v", after, before)
		}
	})

	t.Run("past the timeout", func(t *testing.T) {
		e := start(t, func(c *catalog.Config) { c.ImageProcessingTimeout = time.Nanosecond })
		var products []*catalogv1.Product
		var stalled []string
		for i := range 3 {
			p := e.create(t, draft(sku("MUG", i), "Mug", 1250))
			up, err := e.upload(e.admin, header(p.GetId()), part{chunk: pngBytes(t, uint8(10+i))})
			if err != nil {
				t.Fatal(err)
			}
			products, stalled = append(products, p), append(stalled, up.GetImage().GetImageId())
		}
		// A finished image of the first product stays as it is.
		done, err := e.upload(e.admin, header(products[0].GetId()), part{chunk: pngBytes(t, 20)})
		if err != nil {
			t.Fatal(err)
		}
		variants := []*catalogv1.ImageVariant{{Name: "thumbnail", Object: "products/x/thumb.jpg", Width: 10, Height: 10, ContentType: "image/jpeg"}}
		if _, err := e.client.SetProductImages(e.service, &catalogv1.SetProductImagesRequest{ProductId: products[0].GetId(), ImageId: done.GetImage().GetImageId(), Variants: variants}); err != nil {
			t.Fatal(err)
		}

		if n := fail(t, e, e.service, 2); n != 2 {
			t.Errorf("FailStalledImages(limit 2) = %d, want 2", n)
		}
		if n := fail(t, e, e.service, 0); n != 1 {
			t.Errorf("FailStalledImages again = %d, want the 1 left", n)
		}
		if n := fail(t, e, e.service, 0); n != 0 {
			t.Errorf("FailStalledImages a third time = %d, want 0", n)
		}
		for i, p := range products {
			for _, im := range e.get(t, p.GetId()).GetImages() {
				if im.GetImageId() != stalled[i] {
					if im.GetState() != catalogv1.ImageState_IMAGE_STATE_READY {
						t.Errorf("finished image = %v, want it READY still", im)
					}
					continue
				}
				if im.GetState() != catalogv1.ImageState_IMAGE_STATE_FAILED || !strings.Contains(im.GetFailure(), "did not finish") || len(im.GetVariants()) != 0 {
					t.Errorf("stalled image of product %d = %v, want FAILED for taking too long", i, im)
				}
			}
		}
		if got := len(e.events(t)); got != 4 {
			t.Errorf("outbox = %d events, want the 4 uploads' (failing announces nothing)", got)
		}

		// Variants that come after all are recorded.
		late, err := e.client.SetProductImages(e.service, &catalogv1.SetProductImagesRequest{ProductId: products[1].GetId(), ImageId: stalled[1], Variants: variants})
		if err != nil || late.GetProduct().GetImages()[0].GetState() != catalogv1.ImageState_IMAGE_STATE_READY {
			t.Errorf("SetProductImages after the timeout = %v, %v; want the image READY", late, err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		e := start(t, func(c *catalog.Config) { c.ImageProcessingTimeout = time.Nanosecond })
		p := e.create(t, draft("MUG-1", "Red mug", 1250))
		if _, err := e.upload(e.admin, header(p.GetId()), part{chunk: pngBytes(t, 1)}); err != nil {
			t.Fatal(err)
		}
		before := e.get(t, p.GetId())
		for _, tt := range []struct {
			name   string
			ctx    context.Context
			limit  int32
			code   codes.Code
			reason string
		}{
			{"negative limit", e.service, -1, codes.InvalidArgument, "INVALID_ARGUMENT"},
			{"limit too large", e.service, 10_001, codes.InvalidArgument, "INVALID_ARGUMENT"},
			{"admin", e.admin, 0, codes.PermissionDenied, "PERMISSION_DENIED"},
			{"customer", e.customer, 0, codes.PermissionDenied, "PERMISSION_DENIED"},
			{"anonymous", context.Background(), 0, codes.Unauthenticated, "TOKEN_MISSING"},
		} {
			_, err := e.client.FailStalledImages(tt.ctx, &catalogv1.FailStalledImagesRequest{Limit: tt.limit})
			servetest.WantErr(t, err, tt.code, tt.reason)
			if after := e.get(t, p.GetId()); !proto.Equal(after, before) {
				t.Errorf("%s: product after a refused call = %v, want %v", tt.name, after, before)
			}
		}
	})
}
