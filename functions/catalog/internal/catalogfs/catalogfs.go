// Package catalogfs stores products in Firestore (the catalog's own named
// database), for deployments with several instances writing at once.
//
// Documents:
//
//   - products/<product id>: the product's fields, its images (an array of
//     maps), and "words": the distinct words of its name and description,
//     lower-cased and without accents, as the SQLite full-text index splits
//     them.
//   - skus/<"s:" + path-escaped SKU>: {product_id}. Firestore has no unique
//     index, so the SKU is unique because this document is created in the
//     same transaction as the product (a SKU may be "." or "__x__", which
//     are not document ids: hence the prefix and the escaping).
//   - outbox/<event id>: the events (shared/outbox/fsoutbox), appended in the
//     transaction of the change that emits them.
//
// Every read-modify-write runs in a transaction (reads first, no side
// effects inside: the function may run several times). Nothing is cached
// in memory: other instances write too.
//
// Listings keep the domain's order (name, then id) and keyset paging. The
// query filters natively on active, category, currency and ONE search word
// (array-contains on "words": the longest, likely the rarest), ordered by
// name and document id; with each equality filter on its own, Firestore
// serves any combination by merging the composite indexes in
// CompositeIndexes, which the deployment declares (infra/stack.yaml; the
// emulator needs none). The other search
// words and the price bounds are checked in memory on the documents read:
// Firestore has no full-text search, and a price range cannot be combined
// with an order by name. Such a listing reads on until its page is full;
// after maxScan documents without filling it, it fails with
// product.ErrQueryTooBroad rather than return a short page that would end
// the listing early. Words match whole words only, as FTS5's do; FTS5's
// tokenizer and this one may still differ on rare scripts.
//
// Imports write up to importChunk items per transaction; a failing
// transaction is redone item by item, so only a failing item fails.
package catalogfs

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"cloud.google.com/go/firestore"
	"golang.org/x/text/unicode/norm"

	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/outbox/fsoutbox"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// CompositeIndexes are the composite indexes of the products collection
// that List needs, in infra/stack.yaml's notation (a field is "PATH",
// "PATH desc" or "PATH contains"; Firestore appends __name__): one per
// equality filter, with the order by name. Firestore merges them for any
// combination of the filters. A test holds stack.yaml to this list.
var CompositeIndexes = [][]string{
	{"active", "name"},
	{"category", "name"},
	{"currency", "name"},
	{"words contains", "name"},
}

// The collections.
const (
	productsColl = "products"
	skusColl     = "skus"
)

// txAttempts is how many times a transaction is tried when Firestore
// aborts it for contention (the client's default is 5). Writers of one hot
// product (an import and the image callbacks) abort each other; the
// client backs off exponentially between attempts, so 10 rides out a burst
// without looping for long.
const txAttempts = 10

// maxScan bounds the documents one listing reads when part of its filter
// runs in memory: 1,000 small documents is about a megabyte and a few
// hundred milliseconds, the most a page request should cost.
const maxScan = 1000

// minBatch is the fewest documents a filtered listing reads at a time:
// fewer would mean a round trip per handful of matches.
const minBatch = 50

// importChunk is how many import items share a transaction: each item
// reads two documents and writes up to two, and 100 items keep a commit
// far below Firestore's limits on a transaction's size.
const importChunk = 100

// Store is product.Store on Firestore.
type Store struct {
	*fsstore.Conn
	maxScan int // maxScan, but tests lower it
}

var _ product.Store = (*Store)(nil)

// Open starts connecting to the database of project in the background and
// returns the store at once; its calls wait for the connection. Done and
// Err report when it is ready, or why it failed.
func Open(ctx context.Context, project, database string) *Store {
	return &Store{Conn: fsstore.OpenInBackground(ctx, project, database), maxScan: maxScan}
}

// Outbox waits for the client and returns the database's outbox, for the
// relay; its commit listener runs until ctx ends.
func (s *Store) Outbox(ctx context.Context) (outbox.Store, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	return fsoutbox.New(ctx, c), nil
}

// productDoc is a products document.
type productDoc struct {
	SKU         string     `firestore:"sku"`
	Name        string     `firestore:"name"`
	Description string     `firestore:"description"`
	Category    string     `firestore:"category"`
	Currency    string     `firestore:"currency"`
	PriceMinor  int64      `firestore:"price_minor"`
	Active      bool       `firestore:"active"`
	Images      []imageDoc `firestore:"images"`
	Revision    int64      `firestore:"revision"`
	Created     time.Time  `firestore:"create_time"`
	Updated     time.Time  `firestore:"update_time"`
	Words       []string   `firestore:"words"`
	// ProcessingSince is Product.ProcessingSince, null when no image is
	// processing: what ProcessingBefore queries.
	ProcessingSince *time.Time `firestore:"processing_since"`
}

type imageDoc struct {
	ID          string       `firestore:"id"`
	Object      string       `firestore:"object"`
	ContentType string       `firestore:"content_type"`
	Size        int64        `firestore:"size"`
	State       string       `firestore:"state"`
	Since       time.Time    `firestore:"since"`
	Variants    []variantDoc `firestore:"variants"`
	Failure     string       `firestore:"failure"`
}

type variantDoc struct {
	Name        string `firestore:"name"`
	Object      string `firestore:"object"`
	Width       int    `firestore:"width"`
	Height      int    `firestore:"height"`
	ContentType string `firestore:"content_type"`
}

// skuDoc is a skus document: the product holding the SKU.
type skuDoc struct {
	ProductID string `firestore:"product_id"`
}

var stateNames = map[product.ImageState]string{
	product.ImageProcessing: "processing",
	product.ImageReady:      "ready",
	product.ImageFailed:     "failed",
}

func toDoc(p product.Product) productDoc {
	d := productDoc{
		SKU: p.SKU, Name: p.Name, Description: p.Description, Category: p.Category, Currency: p.Price.Currency,
		PriceMinor: p.Price.Minor, Active: p.Active, Revision: p.Revision, Created: p.Created.UTC(), Updated: p.Updated.UTC(),
		Words: indexWords(p.Name, p.Description),
	}
	for _, im := range p.Images {
		id := imageDoc{ID: im.ID, Object: im.Object, ContentType: im.ContentType, Size: im.Size, State: stateNames[im.State], Since: im.Since.UTC(), Failure: im.Failure}
		for _, v := range im.Variants {
			id.Variants = append(id.Variants, variantDoc(v))
		}
		d.Images = append(d.Images, id)
	}
	if t, ok := p.ProcessingSince(); ok {
		t = t.UTC()
		d.ProcessingSince = &t
	}
	return d
}

func fromSnap(snap *firestore.DocumentSnapshot) (product.Product, error) {
	p, _, err := decode(snap)
	return p, err
}

// decode returns the product of snap and its index words.
func decode(snap *firestore.DocumentSnapshot) (product.Product, []string, error) {
	var d productDoc
	if err := snap.DataTo(&d); err != nil {
		return product.Product{}, nil, fmt.Errorf("read product %s: %w", snap.Ref.ID, err)
	}
	p := product.Product{
		ID: snap.Ref.ID,
		Draft: product.Draft{SKU: d.SKU, Name: d.Name, Description: d.Description, Category: d.Category,
			Price: product.Money{Currency: d.Currency, Minor: d.PriceMinor}, Active: d.Active},
		Revision: d.Revision, Created: d.Created.UTC(), Updated: d.Updated.UTC(),
	}
	for _, im := range d.Images {
		pi := product.Image{ID: im.ID, Object: im.Object, ContentType: im.ContentType, Size: im.Size, Failure: im.Failure}
		if !im.Since.IsZero() {
			pi.Since = im.Since.UTC()
		}
		for st, name := range stateNames {
			if name == im.State {
				pi.State = st
			}
		}
		for _, v := range im.Variants {
			pi.Variants = append(pi.Variants, product.Variant(v))
		}
		p.Images = append(p.Images, pi)
	}
	return p, d.Words, nil
}

// validID reports whether id can name a document; no product has an id
// that cannot.
func validID(id string) bool {
	return id != "" && len(id) <= 1500 && !strings.Contains(id, "/") && id != "." && id != ".." &&
		!(strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"))
}

func productRef(c *firestore.Client, id string) *firestore.DocumentRef {
	return c.Collection(productsColl).Doc(id)
}

func skuRef(c *firestore.Client, sku string) *firestore.DocumentRef {
	return c.Collection(skusColl).Doc("s:" + url.PathEscape(sku))
}

// run runs fn in a read-write transaction, retried when Firestore aborts it.
func run(ctx context.Context, c *firestore.Client, fn func(context.Context, *firestore.Transaction) error) error {
	return c.RunTransaction(ctx, fn, firestore.MaxAttempts(txAttempts))
}

// Create implements product.Store.
func (s *Store) Create(ctx context.Context, p product.Product) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	if !validID(p.ID) {
		return fmt.Errorf("create product: invalid id %q", p.ID)
	}
	pref, sref := productRef(c, p.ID), skuRef(c, p.SKU)
	err = run(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(sref)
		switch {
		case err == nil && snap.Exists():
			return product.ErrSKUTaken.With("sku", p.SKU)
		case err != nil && !fsstore.IsNotFound(err):
			return fmt.Errorf("read sku %s: %w", p.SKU, err)
		}
		if err := tx.Create(pref, toDoc(p)); err != nil {
			return fmt.Errorf("create product: %w", err)
		}
		return tx.Create(sref, skuDoc{ProductID: p.ID})
	})
	if fsstore.IsAlreadyExists(err) {
		// The SKU was read as free in this transaction, so the product
		// id is the one taken.
		return fmt.Errorf("create product %s: the id exists: %w", p.ID, err)
	}
	return err
}

// ByID implements product.Store.
func (s *Store) ByID(ctx context.Context, id string) (product.Product, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return product.Product{}, err
	}
	if !validID(id) {
		return product.Product{}, product.ErrNotFound
	}
	snap, err := productRef(c, id).Get(ctx)
	if fsstore.IsNotFound(err) {
		return product.Product{}, product.ErrNotFound
	}
	if err != nil {
		return product.Product{}, fmt.Errorf("read product %s: %w", id, err)
	}
	return fromSnap(snap)
}

// Update implements product.Store. The SKU is not rewritten (no edit
// changes it; the SQLite store does not write it either).
func (s *Store) Update(ctx context.Context, id string, edit product.Edit) (product.Product, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return product.Product{}, err
	}
	if !validID(id) {
		return product.Product{}, product.ErrNotFound
	}
	ref := productRef(c, id)
	var out product.Product
	err = run(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if fsstore.IsNotFound(err) {
			return product.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read product %s: %w", id, err)
		}
		p, err := fromSnap(snap)
		if err != nil {
			return err
		}
		sku := p.SKU
		changed, events, err := edit(&p)
		if err != nil {
			return err
		}
		out = p
		if !changed {
			return nil
		}
		d := toDoc(p)
		d.SKU = sku
		if err := tx.Set(ref, d); err != nil {
			return fmt.Errorf("update product: %w", err)
		}
		for _, e := range events {
			if _, err := fsoutbox.Append(ctx, c, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return product.Product{}, err
	}
	return out, nil
}

// ProcessingBefore implements product.Store, on the processing_since
// field (a single-field index, which Firestore keeps by default). Products
// written before the field existed have none until their next write.
func (s *Store) ProcessingBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	snaps, err := c.Collection(productsColl).Where("processing_since", "<=", before.UTC()).
		OrderBy("processing_since", firestore.Asc).Limit(limit).Select().Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("find processing images: %w", err)
	}
	ids := make([]string, len(snaps))
	for i, snap := range snaps {
		ids[i] = snap.Ref.ID
	}
	return ids, nil
}

// Import implements product.Store: up to importChunk drafts per
// transaction; if one fails, its drafts are redone one per transaction,
// so only a failing item fails.
func (s *Store) Import(ctx context.Context, drafts []product.Draft, merge product.Merge) ([]product.ItemResult, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]product.ItemResult, 0, len(drafts))
	for chunk := range slices.Chunk(drafts, importChunk) {
		var rs []product.ItemResult
		err := run(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
			var err error
			rs, err = importTx(c, tx, chunk, merge)
			return err
		})
		if err == nil {
			results = append(results, rs...)
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, d := range chunk {
			var r []product.ItemResult
			err := run(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
				var err error
				r, err = importTx(c, tx, []product.Draft{d}, merge)
				return err
			})
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				r = []product.ItemResult{{Outcome: product.Failed, Err: err}}
			}
			results = append(results, r[0])
		}
	}
	return results, nil
}

// importEntry is one SKU of an import transaction: the product as the
// items so far left it.
type importEntry struct {
	ref     *firestore.DocumentRef // the SKU's document
	p       *product.Product       // nil: no product has the SKU
	created bool                   // the product is new in this transaction
	dirty   bool                   // the product must be written
}

// importTx upserts drafts in tx: it reads every SKU and product first,
// runs merge over the items in order (a SKU may come several times), then
// writes each changed product once.
func importTx(c *firestore.Client, tx *firestore.Transaction, drafts []product.Draft, merge product.Merge) ([]product.ItemResult, error) {
	entries := make(map[string]*importEntry, len(drafts))
	var order []string // distinct SKUs, in stream order
	for _, d := range drafts {
		if _, ok := entries[d.SKU]; !ok {
			entries[d.SKU] = &importEntry{ref: skuRef(c, d.SKU)}
			order = append(order, d.SKU)
		}
	}
	refs := make([]*firestore.DocumentRef, len(order))
	for i, sku := range order {
		refs[i] = entries[sku].ref
	}
	snaps, err := tx.GetAll(refs)
	if err != nil {
		return nil, fmt.Errorf("read skus: %w", err)
	}
	var prefs []*firestore.DocumentRef
	var held []string // SKUs of prefs
	for i, snap := range snaps {
		if !snap.Exists() {
			continue
		}
		var sd skuDoc
		if err := snap.DataTo(&sd); err != nil {
			return nil, fmt.Errorf("read sku %s: %w", order[i], err)
		}
		if validID(sd.ProductID) {
			prefs = append(prefs, productRef(c, sd.ProductID))
			held = append(held, order[i])
		}
	}
	if len(prefs) > 0 {
		psnaps, err := tx.GetAll(prefs)
		if err != nil {
			return nil, fmt.Errorf("read products: %w", err)
		}
		for i, snap := range psnaps {
			if !snap.Exists() {
				continue
			}
			p, err := fromSnap(snap)
			if err != nil {
				return nil, err
			}
			entries[held[i]].p = &p
		}
	}

	results := make([]product.ItemResult, len(drafts))
	for i, d := range drafts {
		e := entries[d.SKU]
		var existing *product.Product
		if e.p != nil {
			cp := *e.p
			existing = &cp
		}
		p, outcome := merge(existing, d)
		results[i] = product.ItemResult{Outcome: outcome}
		switch outcome {
		case product.Created:
			e.p, e.created, e.dirty = &p, true, true
		case product.Updated:
			e.p, e.dirty = &p, true
		}
	}

	for _, sku := range order {
		e := entries[sku]
		if !e.dirty {
			continue
		}
		pref := productRef(c, e.p.ID)
		if !validID(e.p.ID) {
			return nil, fmt.Errorf("import %s: invalid product id %q", sku, e.p.ID)
		}
		if e.created {
			if err := tx.Create(pref, toDoc(*e.p)); err != nil {
				return nil, fmt.Errorf("create product: %w", err)
			}
			if err := tx.Create(e.ref, skuDoc{ProductID: e.p.ID}); err != nil {
				return nil, fmt.Errorf("create sku: %w", err)
			}
			continue
		}
		if err := tx.Set(pref, toDoc(*e.p)); err != nil {
			return nil, fmt.Errorf("update product: %w", err)
		}
	}
	return results, nil
}

// List implements product.Store (see the package documentation for what
// runs in Firestore and what in memory).
func (s *Store) List(ctx context.Context, q product.Query) ([]product.Product, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, nil
	}
	words := searchWords(q.Words)
	base := c.Collection(productsColl).Query
	if !q.IncludeInactive {
		base = base.Where("active", "==", true)
	}
	if q.Category != "" {
		base = base.Where("category", "==", q.Category)
	}
	if q.Currency != "" {
		base = base.Where("currency", "==", q.Currency)
	}
	var rest []string // words checked in memory
	if len(words) > 0 {
		// The longest word is likely the rarest: it narrows the most.
		i := 0
		for j, w := range words {
			if len(w) > len(words[i]) {
				i = j
			}
		}
		base = base.Where("words", "array-contains", words[i])
		rest = slices.Delete(slices.Clone(words), i, i+1)
	}
	base = base.OrderBy("name", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc)
	inMemory := len(rest) > 0 || q.MinPrice > 0 || q.MaxPrice > 0
	batch := q.Limit
	if inMemory {
		batch = max(2*q.Limit, minBatch)
	}

	out := make([]product.Product, 0, q.Limit)
	after, afterName, afterID := q.After, q.AfterName, q.AfterID
	for scanned := 0; ; {
		page := base
		if after {
			if !validID(afterID) {
				return nil, product.ErrInvalidPageToken
			}
			page = page.StartAfter(afterName, afterID)
		}
		snaps, err := page.Limit(batch).Documents(ctx).GetAll()
		if err != nil {
			return nil, fmt.Errorf("list products: %w", err)
		}
		for _, snap := range snaps {
			p, have, err := decode(snap)
			if err != nil {
				return nil, err
			}
			after, afterName, afterID = true, p.Name, p.ID
			if !matches(p, have, q, rest) {
				continue
			}
			if out = append(out, p); len(out) == q.Limit {
				return out, nil
			}
		}
		if len(snaps) < batch {
			return out, nil
		}
		if scanned += len(snaps); scanned >= s.maxScan {
			return nil, product.ErrQueryTooBroad.With("scanned", fmt.Sprint(scanned))
		}
	}
}

// matches applies the filters Firestore did not.
func matches(p product.Product, have []string, q product.Query, words []string) bool {
	if q.MinPrice > 0 && p.Price.Minor < q.MinPrice || q.MaxPrice > 0 && p.Price.Minor > q.MaxPrice {
		return false
	}
	for _, w := range words {
		if _, ok := slices.BinarySearch(have, w); !ok {
			return false
		}
	}
	return true
}

// indexWords returns the distinct words of texts as searches match them:
// runs of letters and digits (as product.Words splits a query), lower-case,
// without accents, sorted.
func indexWords(texts ...string) []string {
	var out []string
	for _, t := range texts {
		for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Mn, r)
		}) {
			if w = fold(w); w != "" {
				out = append(out, w)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// searchWords folds the words of a query as indexWords folds texts.
func searchWords(words []string) []string {
	var out []string
	for _, w := range words {
		if w = fold(strings.ToLower(w)); w != "" && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// fold removes accents: the combining marks of the canonical
// decomposition, as FTS5's remove_diacritics does.
func fold(w string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(w) {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}
