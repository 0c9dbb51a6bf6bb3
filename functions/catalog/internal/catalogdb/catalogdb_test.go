package catalogdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shopfn/shopfn/functions/catalog/internal/catalogdb"
	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	"github.com/shopfn/shopfn/functions/catalog/internal/product/storetest"
	"github.com/shopfn/shopfn/shared/store"
)

func open(t testing.TB, cacheSize, cachePages int) (*catalogdb.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s := catalogdb.Open(context.Background(), path, cacheSize, cachePages)
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s, path
}

var (
	newProduct = storetest.New
	rename     = storetest.Rename
)

// TestStore runs the product.Store conformance suite on SQLite, with the
// read caches on.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, _ := open(t, 10, 10)
		return s
	})
}

// TestCachesStayCoherent races readers (by id and by page) against writers
// of one product; after the writers stop, every read must see the last
// committed name, whatever the readers cached on the way.
func TestCachesStayCoherent(t *testing.T) {
	for _, size := range []int{0, 10} {
		t.Run(fmt.Sprintf("cache=%d", size), func(t *testing.T) {
			s, _ := open(t, size, size)
			ctx := context.Background()
			if err := s.Create(ctx, newProduct("prd_1", "SKU-1", "v0")); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := s.ByID(ctx, "prd_1"); err != nil {
							t.Error(err)
							return
						}
						if _, err := s.List(ctx, product.Query{Limit: 10}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			var last string
			for i := range 50 {
				last = fmt.Sprintf("v%d", i+1)
				if _, err := s.Update(ctx, "prd_1", rename(last)); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			wg.Wait()
			for range 3 {
				p, err := s.ByID(ctx, "prd_1")
				if err != nil || p.Name != last {
					t.Fatalf("ByID after the writes = %q, %v; want %q", p.Name, err, last)
				}
				ps, err := s.List(ctx, product.Query{Limit: 10})
				if err != nil || len(ps) != 1 || ps[0].Name != last {
					t.Fatalf("List after the writes = %v, %v; want %q", ps, err, last)
				}
			}
		})
	}
}

// TestFullTextIndexIntegrity changes texts every way the store can (see
// storetest.SearchWrites) and checks that FTS5 finds its index consistent
// with the rows; the suite checks what searches find.
func TestFullTextIndexIntegrity(t *testing.T) {
	s, path := open(t, 0, 0)
	storetest.SearchWrites(t, s)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO products_fts (products_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("full-text integrity check = %v", err)
	}
}

// searchWords is the vocabulary of the search benchmark's products: word
// i has frequency ~1/(i+1) (Zipf), as in real text, so "w0" is in most
// descriptions and "w2000" in a handful.
const searchWords = 5000

func seedSearch(b *testing.B, s *catalogdb.Store, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 2, searchWords-1)
	text := func(words int) string {
		w := make([]string, words)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", zipf.Uint64())
		}
		return strings.Join(w, " ")
	}
	drafts := make([]product.Draft, 0, 500)
	merge := func(_ *product.Product, d product.Draft) (product.Product, product.Outcome) {
		p := newProduct(fmt.Sprintf("prd_%s", d.SKU), d.SKU, d.Name)
		p.Description = d.Description
		return p, product.Created
	}
	for i := range n {
		drafts = append(drafts, product.Draft{SKU: fmt.Sprintf("S%06d", i), Name: text(4), Description: text(40)})
		if len(drafts) == cap(drafts) || i == n-1 {
			if _, err := s.Import(context.Background(), drafts, merge); err != nil {
				b.Fatal(err)
			}
			drafts = drafts[:0]
		}
	}
}

// BenchmarkSearch compares, on 20,000 products of 44 Zipf-distributed
// words, for a first page of 21: the store's full-text search (FTS5), the
// same with the name index scanned first ("fts5-byname"), and a LIKE scan
// (substrings, not words), for queries from very common to rare words.
func BenchmarkSearch(b *testing.B) {
	s, path := open(b, 0, 0)
	seedSearch(b, s, 20_000)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	byName := `SELECT id FROM products INDEXED BY products_by_name WHERE active = 1
		AND seq IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ?1 || ' ' || ?2)
		ORDER BY name, id LIMIT 21`
	like := `SELECT id FROM products WHERE active = 1
		AND (name LIKE '%' || ?1 || '%' OR description LIKE '%' || ?1 || '%')
		AND (name LIKE '%' || ?2 || '%' OR description LIKE '%' || ?2 || '%')
		ORDER BY name, id LIMIT 21`
	rawQuery := func(b *testing.B, q string, words []string) {
		n := 0
		for b.Loop() {
			rows, err := raw.Query(q, words[0], words[1])
			if err != nil {
				b.Fatal(err)
			}
			n = 0
			for rows.Next() {
				n++
			}
			rows.Close()
		}
		b.ReportMetric(float64(n), "rows")
	}
	for _, words := range [][]string{{"w2", "w3"}, {"w20", "w30"}, {"w200", "w300"}, {"w2", "w2000"}} {
		name := strings.Join(words, "+")
		b.Run("fts5/"+name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				ps, err := s.List(context.Background(), product.Query{Filter: product.Filter{Words: words}, Limit: 21})
				if err != nil {
					b.Fatal(err)
				}
				n = len(ps)
			}
			b.ReportMetric(float64(n), "rows")
		})
		b.Run("fts5-byname/"+name, func(b *testing.B) { rawQuery(b, byName, words) })
		b.Run("like/"+name, func(b *testing.B) { rawQuery(b, like, words) })
	}
}

// TestMigrationFindsImagesProcessingBeforeIt opens a database written
// before images kept their time: a product whose image was PROCESSING is
// found by ProcessingBefore from its update time, the others are not.
func TestMigrationFindsImagesProcessingBeforeIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	first, err := fs.ReadFile(catalogdb.Migrations().FS, "0001_products.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1 := store.Migrations{Name: "catalog", FS: fstest.MapFS{"0001_products.sql": {Data: first}}}
	db, err := store.OpenSQLite(context.Background(), path, v1)
	if err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO products (id, sku, name, description, category, currency, price_minor, active, images, revision, create_time, update_time)
		VALUES (?, ?, 'Mug', '', 'kitchen', 'EUR', 100, 1, ?, 2, 1000, ?)`
	const processing = `[{"id":"img1","object":"o","content_type":"image/jpeg","size":1,"state":"processing"}]`
	const ready = `[{"id":"img1","object":"o","content_type":"image/jpeg","size":1,"state":"ready"}]`
	for _, row := range []struct {
		id     string
		images any
	}{{"prd_processing", processing}, {"prd_ready", ready}, {"prd_none", nil}} {
		if _, err := db.Exec(insert, row.id, "SKU-"+row.id, row.images, int64(2_000_000)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := catalogdb.Open(context.Background(), path, 0, 0)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	updated := time.UnixMicro(2_000_000)
	if ids, err := s.ProcessingBefore(ctx, updated, 10); err != nil || !slices.Equal(ids, []string{"prd_processing"}) {
		t.Errorf("ProcessingBefore(its update time) = %v, %v; want [prd_processing]", ids, err)
	}
	if ids, err := s.ProcessingBefore(ctx, updated.Add(-time.Microsecond), 10); err != nil || len(ids) != 0 {
		t.Errorf("ProcessingBefore(just before its update) = %v, %v; want none", ids, err)
	}
	p, err := s.ByID(ctx, "prd_processing")
	if err != nil || len(p.Images) != 1 || !p.Images[0].Since.IsZero() {
		t.Fatalf("ByID = %+v, %v; want its image with no time of its own", p, err)
	}
	if since, ok := p.ProcessingSince(); !ok || !since.Equal(updated) {
		t.Errorf("ProcessingSince = %v, %v; want the update time %v", since, ok, updated)
	}
}
