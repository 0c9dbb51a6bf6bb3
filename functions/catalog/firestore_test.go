package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shopfn/shopfn/functions/catalog"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/outbox/fsoutbox"
	"github.com/shopfn/shopfn/shared/servetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestoreStore runs the service with SHOPFN_STORE=firestore against
// the emulator: create, read, search, update, an image upload whose event
// lands in Firestore's outbox, and a SKU conflict.
func TestFirestoreStore(t *testing.T) {
	host := testenv.Firestore(t)
	testenv.SetFirestoreEnv(t, host)
	project := testenv.ProjectID(t)
	e := start(t, func(cfg *catalog.Config) {
		cfg.Store, cfg.ProjectID = "firestore", project
	})

	p := e.create(t, draft("MUG-1", "Red mug", 1250))
	e.create(t, draft("BOWL-1", "Café bowl", 900))
	if got := e.get(t, p.GetId()); got.GetName() != "Red mug" || got.GetEtag() != p.GetEtag() {
		t.Errorf("GetProduct = %v, want the created product", got)
	}
	list, err := e.client.ListProducts(e.customer, &catalogv1.ListProductsRequest{Query: "cafe", Category: "kitchen"})
	if err != nil || len(list.GetProducts()) != 1 || list.GetProducts()[0].GetSku() != "BOWL-1" {
		t.Errorf("ListProducts(cafe) = %v, %v; want BOWL-1", list, err)
	}
	up, err := e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
		Product: &catalogv1.ProductDraft{Name: "Blue mug"},
	})
	if err != nil || up.GetProduct().GetName() != "Blue mug" {
		t.Fatalf("UpdateProduct = %v, %v", up, err)
	}
	_, err = e.client.UpdateProduct(e.admin, &catalogv1.UpdateProductRequest{
		ProductId: p.GetId(), Etag: p.GetEtag(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}},
		Product: &catalogv1.ProductDraft{Name: "Lost"},
	})
	servetest.WantErr(t, err, codes.Aborted, "STALE_ETAG")
	_, err = e.client.CreateProduct(e.admin, &catalogv1.CreateProductRequest{Product: draft("MUG-1", "Again", 1)})
	servetest.WantErr(t, err, codes.AlreadyExists, "SKU_TAKEN")

	img, err := e.upload(e.admin, append([]part{header(p.GetId())}, chunks(pngBytes(t, 1), 1000)...)...)
	if err != nil {
		t.Fatalf("UploadProductImage = %v", err)
	}
	ctx := context.Background()
	c, err := firestore.NewClientWithDatabase(ctx, project, e.cfg.FirestoreDatabaseName(catalog.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := fsoutbox.New(ctx, c).Unsent(ctx, 10)
	if err != nil || len(rows) != 1 || rows[0].Type != outbox.TypeImageUploaded {
		t.Fatalf("Firestore outbox = %+v, %v; want one %s", rows, err, outbox.TypeImageUploaded)
	}
	var ev eventsv1.ImageUploaded
	if err := rows[0].Decode(&ev); err != nil || ev.GetProductId() != p.GetId() || ev.GetImageId() != img.GetImage().GetImageId() {
		t.Errorf("event = %v, %v; want the upload of %s", &ev, err, p.GetId())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "catalog.db")); !os.IsNotExist(err) {
		t.Errorf("catalog.db in the data dir: %v; want no SQLite file", err)
	}
}
