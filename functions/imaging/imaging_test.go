package imaging_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/imaging"
	"github.com/shopfn/shopfn/infra"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/devbroker"
	"github.com/shopfn/shopfn/shared/events/eventstest"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/servetest"
)

// env is the real pipeline: the catalog service publishing to the
// embedded broker, the push bridge, and the imaging function on the
// functions framework.
type env struct {
	catalog catalogv1.CatalogServiceClient
	admin   context.Context
	dataDir string
	url     string // the function's push URL for catalog-image-uploaded
	project string
}

func start(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	dataDir := t.TempDir()

	var ccfg catalog.Config
	if err := config.Load(&ccfg); err != nil {
		t.Fatal(err)
	}
	ccfg.DataDir = dataDir
	ccfg.RateLimit, ccfg.RateBurst = 1e9, 1e9
	ccfg.OutboxSweep = 0

	// The function, served first so that its project id is known.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	catalogAddr := lis.Addr().String()
	var icfg imaging.Config
	if err := config.Load(&icfg); err != nil {
		t.Fatal(err)
	}
	icfg.DataDir, icfg.CatalogAddr = dataDir, catalogAddr
	d, err := serve.StartClient(ctx, imaging.Name, icfg.Platform)
	if err != nil {
		t.Fatal(err)
	}
	f, err := imaging.Open(ctx, icfg, d, log)
	if err != nil {
		t.Fatal(err)
	}
	url, project := eventstest.Serve(t, events.Function(imaging.Name, log, f.Handle))

	srv := devbroker.Embedded()
	client, err := relay.DialAddr(ctx, project, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	stack := infra.MustLoad()
	if err := devbroker.Provision(ctx, client, project, stack, nil); err != nil {
		t.Fatal(err)
	}
	ccfg.Events, ccfg.PubSubProject = srv.Addr, project
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := catalog.Run(ctx, ccfg, log, lis); err != nil {
			t.Errorf("catalog.Run = %v", err)
		}
	})
	b := &devbroker.Bridge{Client: client, Project: project, Stack: stack, URL: func(string) string { return url }, HTTP: http.DefaultClient, Log: log}
	wg.Go(func() { b.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		d.Close()
		client.Close()
		srv.Close()
	})

	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := auth.NewSigner(keys.Private(), ccfg.Issuer, ccfg.Audience, time.Hour).Issue(auth.Principal{Subject: "usr_admin", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return &env{
		catalog: catalogv1.NewCatalogServiceClient(servetest.Conn(t, catalogAddr)),
		admin:   auth.WithBearer(context.Background(), tok),
		dataDir: dataDir, project: project,
		url: url + devbroker.PushPath(project, "catalog-image-uploaded"),
	}
}

func (e *env) product(t *testing.T, sku string) *catalogv1.Product {
	t.Helper()
	resp, err := e.catalog.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: &catalogv1.ProductDraft{
		Sku: sku, Name: "Mug " + sku, Category: "kitchen", Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 1200}, Active: true,
	}})
	if err != nil {
		t.Fatalf("CreateProduct = %v", err)
	}
	return resp.GetProduct()
}

func (e *env) upload(t *testing.T, productID string, data []byte) string {
	t.Helper()
	stream, err := e.catalog.UploadProductImage(e.admin)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&catalogv1.UploadProductImageRequest{Part: &catalogv1.UploadProductImageRequest_Header{Header: &catalogv1.ImageUploadHeader{ProductId: productID}}})
	stream.Send(&catalogv1.UploadProductImageRequest{Part: &catalogv1.UploadProductImageRequest_Chunk{Chunk: data}})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("UploadProductImage = %v", err)
	}
	return resp.GetImage().GetImageId()
}

// settled waits until the product's image is READY or FAILED.
func (e *env) settled(t *testing.T, productID, imageID string) (*catalogv1.Product, *catalogv1.ProductImage) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := e.catalog.GetProduct(e.admin, &catalogv1.GetProductRequest{ProductId: productID})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range resp.GetProduct().GetImages() {
			if im.GetImageId() == imageID && im.GetState() != catalogv1.ImageState_IMAGE_STATE_PROCESSING {
				return resp.GetProduct(), im
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("image %s of %s still processing after 30 s", imageID, productID)
	return nil, nil
}

func photo(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: uint8(x ^ y), A: 255})
		}
	}
	var b bytes.Buffer
	jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	return b.Bytes()
}

// bomb is a valid PNG header declaring w×h pixels, with no pixel data.
func bomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestVariantsAreMadeAndRecorded(t *testing.T) {
	e := start(t)
	p := e.product(t, "mug-1")
	id := e.upload(t, p.GetId(), photo(1600, 1200))
	_, im := e.settled(t, p.GetId(), id)
	if im.GetState() != catalogv1.ImageState_IMAGE_STATE_READY {
		t.Fatalf("image state = %v (%s), want READY", im.GetState(), im.GetFailure())
	}
	want := map[string][2]int32{"thumbnail": {200, 150}, "medium": {800, 600}, "watermarked": {800, 600}}
	if len(im.GetVariants()) != len(want) {
		t.Fatalf("variants = %v, want %d", im.GetVariants(), len(want))
	}
	sums := map[string][]byte{}
	for _, v := range im.GetVariants() {
		if got := [2]int32{v.GetWidth(), v.GetHeight()}; got != want[v.GetName()] {
			t.Errorf("variant %s = %v, want %v", v.GetName(), got, want[v.GetName()])
		}
		b := e.object(t, v.GetObject())
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || format != "jpeg" || int32(cfg.Width) != v.GetWidth() {
			t.Errorf("object %s decodes as %s %dx%d, %v", v.GetObject(), format, cfg.Width, cfg.Height, err)
		}
		sums[v.GetObject()] = b
	}

	// The same event again: acknowledged, identical objects, same record.
	again := e.redeliver(t, p.GetId(), id, im)
	if again/100 != 2 {
		t.Errorf("redelivery = HTTP %d, want 2xx", again)
	}
	_, im2 := e.settled(t, p.GetId(), id)
	if len(im2.GetVariants()) != len(im.GetVariants()) {
		t.Errorf("variants after redelivery = %v, want %v", im2.GetVariants(), im.GetVariants())
	}
	for obj, b := range sums {
		if !bytes.Equal(e.object(t, obj), b) {
			t.Errorf("%s changed on redelivery", obj)
		}
	}
}

func TestBadImagesFailWithoutHarm(t *testing.T) {
	e := start(t)
	good := photo(640, 480)
	tests := []struct {
		name, sku string
		data      []byte
		failure   string
	}{
		{"image bomb", "bomb", bomb(100_000, 100_000), "too many pixels"},
		{"truncated JPEG", "trunc", good[:len(good)/2], "truncated or corrupt"},
		{"PNG signature, then garbage", "garbage", append([]byte("\x89PNG\r\n\x1a\n"), "not an image at all, only text"...), "truncated or corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.product(t, tt.sku)
			id := e.upload(t, p.GetId(), tt.data)
			after, im := e.settled(t, p.GetId(), id)
			if im.GetState() != catalogv1.ImageState_IMAGE_STATE_FAILED || !strings.Contains(im.GetFailure(), tt.failure) {
				t.Errorf("image = %v %q, want FAILED %q", im.GetState(), im.GetFailure(), tt.failure)
			}
			if len(im.GetVariants()) != 0 {
				t.Errorf("variants = %v, want none", im.GetVariants())
			}
			if after.GetName() != p.GetName() || after.GetPrice().GetAmountMinor() != p.GetPrice().GetAmountMinor() || !after.GetActive() {
				t.Errorf("product after = %v, want it unchanged but for the image", after)
			}
		})
	}
}

// redeliver pushes the image's event again, as Pub/Sub does after a lost
// acknowledgement.
func (e *env) redeliver(t *testing.T, productID, imageID string, im *catalogv1.ProductImage) int {
	t.Helper()
	data := `{"productId":"` + productID + `","imageId":"` + imageID + `","object":"` + im.GetOriginalObject() + `","contentType":"image/jpeg"}`
	body := `{"message":{"data":"` + b64(data) + `","attributes":{"ce-id":"img-again","ce-type":"catalog.image.uploaded","ce-source":"//shopfn/catalog","ce-specversion":"1.0"},"messageId":"again"},"subscription":"x"}`
	resp, err := http.Post(e.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) object(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dataDir, "catalog-images", filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("object %s: %v", name, err)
	}
	return b
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestOutOfOrderDeliveryKeepsEachImage: an older image's event arriving
// after a newer image was processed records the older image's variants on
// it alone; the newer image keeps its own.
func TestOutOfOrderDeliveryKeepsEachImage(t *testing.T) {
	e := start(t)
	p := e.product(t, "mug-ooo")
	first := e.upload(t, p.GetId(), photo(900, 600))
	_, im1 := e.settled(t, p.GetId(), first)
	second := e.upload(t, p.GetId(), photo(600, 900))
	_, im2 := e.settled(t, p.GetId(), second)
	if code := e.redeliver(t, p.GetId(), first, im1); code/100 != 2 {
		t.Fatalf("late delivery of the first image = HTTP %d", code)
	}
	after, _ := e.settled(t, p.GetId(), second)
	byID := map[string]*catalogv1.ProductImage{}
	for _, im := range after.GetImages() {
		byID[im.GetImageId()] = im
	}
	for _, want := range []*catalogv1.ProductImage{im1, im2} {
		got := byID[want.GetImageId()]
		if got.GetState() != catalogv1.ImageState_IMAGE_STATE_READY || len(got.GetVariants()) != len(want.GetVariants()) {
			t.Fatalf("image %s after the late event = %v, want it READY as before", want.GetImageId(), got)
		}
		for i, v := range got.GetVariants() {
			if v.GetObject() != want.GetVariants()[i].GetObject() || v.GetWidth() != want.GetVariants()[i].GetWidth() {
				t.Errorf("image %s variant %d = %v, want %v", want.GetImageId(), i, v, want.GetVariants()[i])
			}
		}
	}
	if w, h := byID[second].GetVariants()[1].GetWidth(), byID[second].GetVariants()[1].GetHeight(); w >= h {
		t.Errorf("the second (portrait) image's medium is %d×%d: overwritten by the first's", w, h)
	}
}
