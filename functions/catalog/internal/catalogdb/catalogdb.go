// Package catalogdb stores products in SQLite, with a full-text index
// (FTS5) of their names and descriptions.
package catalogdb

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopfn/shopfn/functions/catalog/internal/product"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema's migrations, for store.OpenSQLite.
func Migrations() store.Migrations {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return store.Migrations{Name: "catalog", FS: sub}
}

const columns = `id, sku, name, description, category, currency, price_minor, active, images, revision, create_time, update_time`

// The statements of point queries and writes, prepared once: parsing SQL
// costs more than running them.
const (
	sqlInsert = `INSERT INTO products (` + columns + `, processing_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlByID   = `SELECT ` + columns + ` FROM products WHERE id = ?`
	sqlBySKU  = `SELECT ` + columns + ` FROM products WHERE sku = ?`
	sqlUpdate = `UPDATE products SET name = ?, description = ?, category = ?, currency = ?, price_minor = ?, active = ?,
		images = ?, revision = ?, update_time = ?, processing_since = ? WHERE id = ? AND revision = ?`
	// The full-text index's changes of a transaction, each one statement
	// for any number of products (a JSON array): removing entries needs the
	// text they were indexed with, adding reads the products' current text.
	sqlFTSDelete = `INSERT INTO products_fts (products_fts, rowid, name, description)
		SELECT 'delete', p.seq, j.value ->> 'name', j.value ->> 'description'
		FROM json_each(?) AS j JOIN products AS p ON p.id = j.value ->> 'id'`
	sqlFTSInsert = `INSERT INTO products_fts (rowid, name, description)
		SELECT seq, name, description FROM products WHERE id IN (SELECT value FROM json_each(?))`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	insert, byID, bySKU, update *sql.Stmt
	ftsDelete, ftsInsert        *sql.Stmt

	// lists holds the listing statements, one per shape of filter,
	// prepared on first use.
	mu    sync.Mutex
	lists map[listShape]*sql.Stmt
}

// Store is product.Store on SQLite.
type Store struct {
	open *store.Opening[*db]
	// products and pages are read caches (see store.Cache); every write
	// drops what it touched and every page (any page may hold any product).
	products *store.Cache[string, product.Product]
	pages    *store.Cache[string, []product.Product]
}

var _ product.Store = (*Store)(nil)

// Open starts opening (creating, migrating, preparing) the database at path
// in the background and returns the store at once; its calls wait for the
// database. Done and Err report when it is ready, or why it failed. Up to
// cacheSize products read by id and cachePages listing pages are kept in
// memory (0 turns either off); the process must be the only writer of the
// file, as it is for one instance.
func Open(ctx context.Context, path string, cacheSize, cachePages int) *Store {
	return &Store{products: store.NewCache[string, product.Product](cacheSize), pages: store.NewCache[string, []product.Product](cachePages), open: store.InBackground(func() (*db, error) {
		sqlDB, err := store.OpenSQLite(ctx, path, Migrations(), outbox.Migrations())
		if err != nil {
			return nil, err
		}
		d := &db{DB: sqlDB, lists: make(map[listShape]*sql.Stmt)}
		if err := store.Prepare(ctx, sqlDB, []store.Statement{{Dst: &d.insert, SQL: sqlInsert}, {Dst: &d.byID, SQL: sqlByID}, {Dst: &d.bySKU, SQL: sqlBySKU}, {Dst: &d.update, SQL: sqlUpdate},
			{Dst: &d.ftsDelete, SQL: sqlFTSDelete}, {Dst: &d.ftsInsert, SQL: sqlFTSInsert}}); err != nil {
			return nil, err
		}
		return d, nil
	})}
}

// Done is closed when the database is open or failed to open (see Err).
func (s *Store) Done() <-chan struct{} { return s.open.Done() }

// Err returns why the database failed to open, once Done is closed.
func (s *Store) Err() error { return s.open.Err() }

// DB waits for the database and returns it (for the outbox relay and tests).
func (s *Store) DB(ctx context.Context) (*sql.DB, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	return d.DB, nil
}

// Outbox waits for the database and returns its outbox, for the relay.
func (s *Store) Outbox(ctx context.Context) (outbox.Store, error) {
	db, err := s.DB(ctx)
	if err != nil {
		return nil, err
	}
	return outbox.SQLite(db), nil
}

// Close closes the database (waiting for it to open first).
func (s *Store) Close() error {
	d, err := s.open.Wait()
	if err != nil {
		return nil // nothing was left open
	}
	return d.Close() // closes the statements too
}

// Create implements product.Store.
func (s *Store) Create(ctx context.Context, p product.Product) error {
	d, err := s.open.Get(ctx)
	if err != nil {
		return err
	}
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		if err := insert(ctx, tx.StmtContext(ctx, d.insert), p); err != nil {
			return err
		}
		var fts ftsChanges
		fts.created(p.ID)
		return fts.apply(ctx, tx, d)
	})
	s.wrote(p.ID)
	return err
}

// ByID implements product.Store.
func (s *Store) ByID(ctx context.Context, id string) (product.Product, error) {
	p, gen, ok := s.products.Get(id)
	if ok {
		return p, nil
	}
	d, err := s.open.Get(ctx)
	if err != nil {
		return product.Product{}, err
	}
	p, err = scan(d.byID.QueryRowContext(pointRead(ctx), id))
	if err != nil {
		return product.Product{}, err
	}
	s.products.Fill(id, p, gen)
	return p, nil
}

// Update implements product.Store.
func (s *Store) Update(ctx context.Context, id string, edit product.Edit) (product.Product, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return product.Product{}, err
	}
	var p product.Product
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		var err error
		if p, err = scan(tx.StmtContext(ctx, d.byID).QueryRowContext(ctx, id)); err != nil {
			return err
		}
		before := p
		changed, events, err := edit(&p)
		if err != nil || !changed {
			return err
		}
		if err := update(ctx, tx.StmtContext(ctx, d.update), p, before.Revision); err != nil {
			return err
		}
		var fts ftsChanges
		fts.changed(before, p)
		if err := fts.apply(ctx, tx, d); err != nil {
			return err
		}
		for _, e := range events {
			if _, err := outbox.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	// Invalidate even when the commit failed: whether it happened is unknown.
	s.wrote(id)
	if err != nil {
		return product.Product{}, err
	}
	return p, nil
}

// Import implements product.Store: the drafts go in one transaction. If
// that fails, each is retried in its own, so only a failing item fails.
func (s *Store) Import(ctx context.Context, drafts []product.Draft, merge product.Merge) ([]product.ItemResult, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]product.ItemResult, len(drafts))
	var touched []string
	defer func() { s.wrote(touched...) }()
	// The statements of a batch run detached from the request's
	// cancellation, like point reads: a batch takes milliseconds, the
	// transaction still ends with the context, and a cancellable context
	// costs a goroutine per statement in the driver.
	qctx := pointRead(ctx)
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		st := importStmts{tx.StmtContext(ctx, d.bySKU), tx.StmtContext(ctx, d.insert), tx.StmtContext(ctx, d.update)}
		var fts ftsChanges
		for i, dr := range drafts {
			r, id, err := st.upsert(qctx, dr, merge, &fts)
			if err != nil {
				return err
			}
			results[i] = r
			if r.Outcome != product.Unchanged {
				touched = append(touched, id)
			}
		}
		return fts.apply(ctx, tx, d)
	})
	if err == nil {
		return results, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i, dr := range drafts {
		err := store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
			st := importStmts{tx.StmtContext(ctx, d.bySKU), tx.StmtContext(ctx, d.insert), tx.StmtContext(ctx, d.update)}
			var fts ftsChanges
			r, id, err := st.upsert(ctx, dr, merge, &fts)
			if err != nil {
				return err
			}
			results[i] = r
			touched = append(touched, id)
			return fts.apply(ctx, tx, d)
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			results[i] = product.ItemResult{Outcome: product.Failed, Err: err}
		}
	}
	return results, nil
}

// importStmts are the statements of an import, in its transaction.
type importStmts struct{ bySKU, insert, update *sql.Stmt }

// upsert writes one import item, noting its index changes in fts, and
// returns its result and product id.
func (st importStmts) upsert(ctx context.Context, dr product.Draft, merge product.Merge, fts *ftsChanges) (product.ItemResult, string, error) {
	cur, err := scan(st.bySKU.QueryRowContext(ctx, dr.SKU))
	var existing *product.Product
	switch {
	case err == nil:
		existing = &cur
	case !errors.Is(err, product.ErrNotFound):
		return product.ItemResult{}, "", err
	}
	p, outcome := merge(existing, dr)
	switch outcome {
	case product.Created:
		err = insert(ctx, st.insert, p)
		fts.created(p.ID)
	case product.Updated:
		err = update(ctx, st.update, p, cur.Revision)
		fts.changed(cur, p)
	}
	if err != nil {
		return product.ItemResult{}, "", err
	}
	return product.ItemResult{Outcome: outcome}, p.ID, nil
}

func insert(ctx context.Context, stmt *sql.Stmt, p product.Product) error {
	images, err := marshalImages(p.Images)
	if err != nil {
		return err
	}
	_, err = stmt.ExecContext(ctx, p.ID, p.SKU, p.Name, p.Description, p.Category, p.Price.Currency, p.Price.Minor,
		p.Active, images, p.Revision, p.Created.UnixMicro(), p.Updated.UnixMicro(), processingSince(p))
	if store.IsUniqueViolation(err) {
		return product.ErrSKUTaken.With("sku", p.SKU).Wrap(err)
	}
	if err != nil {
		return fmt.Errorf("insert product: %w", err)
	}
	return nil
}

// processingSince is the processing_since column of p: NULL unless an
// image is processing.
func processingSince(p product.Product) any {
	if t, ok := p.ProcessingSince(); ok {
		return t.UnixMicro()
	}
	return nil
}

// update writes p over the row at revision (the one it was read at).
func update(ctx context.Context, stmt *sql.Stmt, p product.Product, revision int64) error {
	images, err := marshalImages(p.Images)
	if err != nil {
		return err
	}
	res, err := stmt.ExecContext(ctx, p.Name, p.Description, p.Category, p.Price.Currency, p.Price.Minor, p.Active,
		images, p.Revision, p.Updated.UnixMicro(), processingSince(p), p.ID, revision)
	if err != nil {
		return fmt.Errorf("update product: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// Cannot happen inside the write transaction that read the row.
		return fmt.Errorf("update product %s at revision %d: %d rows, %v", p.ID, revision, n, err)
	}
	return nil
}

// ftsChanges collects the full-text index changes of a transaction, to be
// applied in two statements (see sqlFTSDelete).
type ftsChanges struct {
	old  []ftsText // entries to remove, with the text they were indexed with
	ids  []string  // products to index with their current text
	seen map[string]bool
}

type ftsText struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// created notes a new product.
func (c *ftsChanges) created(id string) {
	c.mark(id)
	c.ids = append(c.ids, id)
}

// changed notes a product written over before; its entry is redone if its
// text changed. The first change of the transaction holds the indexed text.
func (c *ftsChanges) changed(before, after product.Product) {
	if before.Name == after.Name && before.Description == after.Description || c.seen[before.ID] {
		return
	}
	c.mark(before.ID)
	c.old = append(c.old, ftsText{ID: before.ID, Name: before.Name, Description: before.Description})
	c.ids = append(c.ids, before.ID)
}

func (c *ftsChanges) mark(id string) {
	if c.seen == nil {
		c.seen = make(map[string]bool)
	}
	c.seen[id] = true
}

// apply writes the changes, after the products rows are written.
func (c *ftsChanges) apply(ctx context.Context, tx *sql.Tx, d *db) error {
	if len(c.old) > 0 {
		b, err := json.Marshal(c.old)
		if err != nil {
			return fmt.Errorf("encode index changes: %w", err)
		}
		if _, err := tx.StmtContext(ctx, d.ftsDelete).ExecContext(ctx, string(b)); err != nil {
			return fmt.Errorf("unindex products: %w", err)
		}
	}
	if len(c.ids) > 0 {
		b, err := json.Marshal(c.ids)
		if err != nil {
			return fmt.Errorf("encode index changes: %w", err)
		}
		if _, err := tx.StmtContext(ctx, d.ftsInsert).ExecContext(ctx, string(b)); err != nil {
			return fmt.Errorf("index products: %w", err)
		}
	}
	return nil
}

// listShape says which conditions a listing has; each shape has its own
// prepared statement.
type listShape struct {
	inactive, category, currency, min, max, words, after bool
}

func shapeOf(q product.Query) listShape {
	return listShape{
		inactive: q.IncludeInactive,
		category: q.Category != "",
		currency: q.Currency != "",
		min:      q.MinPrice > 0,
		max:      q.MaxPrice > 0,
		words:    len(q.Words) > 0,
		after:    q.After,
	}
}

// sql returns the listing statement of the shape. Its parameters come in
// the order of args.
func (sh listShape) sql() string {
	var b strings.Builder
	b.WriteString(`SELECT ` + columns + ` FROM products WHERE 1`)
	if !sh.inactive {
		b.WriteString(` AND active = 1`)
	}
	if sh.category {
		b.WriteString(` AND category = ?`)
	}
	if sh.currency {
		b.WriteString(` AND currency = ?`)
	}
	if sh.min {
		b.WriteString(` AND price_minor >= ?`)
	}
	if sh.max {
		b.WriteString(` AND price_minor <= ?`)
	}
	if sh.words {
		b.WriteString(` AND seq IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ?)`)
	}
	if sh.after {
		b.WriteString(` AND (name, id) > (?, ?)`)
	}
	b.WriteString(` ORDER BY name, id LIMIT ?`)
	return b.String()
}

func args(q product.Query) []any {
	a := make([]any, 0, 8)
	if q.Category != "" {
		a = append(a, q.Category)
	}
	if q.Currency != "" {
		a = append(a, q.Currency)
	}
	if q.MinPrice > 0 {
		a = append(a, q.MinPrice)
	}
	if q.MaxPrice > 0 {
		a = append(a, q.MaxPrice)
	}
	if len(q.Words) > 0 {
		a = append(a, matchExpr(q.Words))
	}
	if q.After {
		a = append(a, q.AfterName, q.AfterID)
	}
	return append(a, q.Limit)
}

// matchExpr is the FTS5 query for "every word": each word a quoted string
// (so none is read as an operator), implicitly ANDed.
func matchExpr(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	return strings.Join(quoted, " ")
}

func (d *db) listStmt(ctx context.Context, sh listShape) (*sql.Stmt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.lists[sh]; ok {
		return st, nil
	}
	st, err := d.PrepareContext(ctx, sh.sql())
	if err != nil {
		return nil, fmt.Errorf("prepare listing: %w", err)
	}
	d.lists[sh] = st
	return st, nil
}

// List implements product.Store. Pages come from the cache when they can:
// the same few (a shop's front page, its categories) are asked for over
// and over, and reading 20 rows costs several times the rest of the call.
func (s *Store) List(ctx context.Context, q product.Query) ([]product.Product, error) {
	key := pageKey(q)
	ps, gen, ok := s.pages.Get(key)
	if ok {
		return ps, nil
	}
	ps, err := s.list(ctx, q)
	if err != nil {
		return nil, err
	}
	s.pages.Fill(key, ps, gen)
	return ps, nil
}

// pageKey identifies a listing page in the cache.
func pageKey(q product.Query) string {
	var b strings.Builder
	for _, s := range []string{q.Category, q.Currency, strconv.FormatInt(q.MinPrice, 10), strconv.FormatInt(q.MaxPrice, 10),
		strings.Join(q.Words, " "), strconv.FormatBool(q.IncludeInactive), strconv.FormatBool(q.After), q.AfterName, q.AfterID,
		strconv.Itoa(q.Limit)} {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return b.String()
}

func (s *Store) list(ctx context.Context, q product.Query) ([]product.Product, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	st, err := d.listStmt(ctx, shapeOf(q))
	if err != nil {
		return nil, err
	}
	// Like a point read, a page is a bounded query of a few rows.
	rows, err := st.QueryContext(pointRead(ctx), args(q)...)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	defer rows.Close()
	ps := make([]product.Product, 0, q.Limit)
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return ps, nil
}

// ProcessingBefore implements product.Store.
func (s *Store) ProcessingBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := store.Strings(d.QueryContext(ctx, `SELECT id FROM products WHERE processing_since <= ?
		ORDER BY processing_since LIMIT ?`, before.UnixMicro(), limit))
	if err != nil {
		return nil, fmt.Errorf("find processing images: %w", err)
	}
	return ids, nil
}

// pointRead detaches a short, bounded read from its request's
// cancellation: it takes microseconds, and a cancellable context makes the
// driver start a goroutine per query to watch it.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (product.Product, error) {
	var (
		p                product.Product
		images           sql.NullString
		created, updated int64
	)
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Category, &p.Price.Currency, &p.Price.Minor, &p.Active,
		&images, &p.Revision, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return product.Product{}, product.ErrNotFound
	}
	if err != nil {
		return product.Product{}, fmt.Errorf("read product: %w", err)
	}
	p.Created, p.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	if images.Valid {
		if p.Images, err = unmarshalImages(images.String); err != nil {
			return product.Product{}, fmt.Errorf("decode images of %s: %w", p.ID, err)
		}
	}
	return p, nil
}

// storedImage is an image as the images column keeps it (JSON).
type storedImage struct {
	ID          string          `json:"id"`
	Object      string          `json:"object"`
	ContentType string          `json:"content_type"`
	Size        int64           `json:"size"`
	State       string          `json:"state"`
	Since       int64           `json:"since,omitempty"` // Unix µs; absent before the catalog kept it
	Variants    []storedVariant `json:"variants,omitempty"`
	Failure     string          `json:"failure,omitempty"`
}

type storedVariant struct {
	Name        string `json:"name"`
	Object      string `json:"object"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	ContentType string `json:"content_type"`
}

var stateNames = map[product.ImageState]string{
	product.ImageProcessing: "processing",
	product.ImageReady:      "ready",
	product.ImageFailed:     "failed",
}

func marshalImages(images []product.Image) (any, error) {
	if len(images) == 0 {
		return nil, nil
	}
	out := make([]storedImage, len(images))
	for i, im := range images {
		out[i] = storedImage{ID: im.ID, Object: im.Object, ContentType: im.ContentType, Size: im.Size,
			State: stateNames[im.State], Failure: im.Failure}
		if !im.Since.IsZero() {
			out[i].Since = im.Since.UnixMicro()
		}
		for _, v := range im.Variants {
			out[i].Variants = append(out[i].Variants, storedVariant(v))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode images: %w", err)
	}
	return string(b), nil
}

func unmarshalImages(s string) ([]product.Image, error) {
	var in []storedImage
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]product.Image, len(in))
	for i, im := range in {
		out[i] = product.Image{ID: im.ID, Object: im.Object, ContentType: im.ContentType, Size: im.Size, Failure: im.Failure}
		if im.Since != 0 {
			out[i].Since = time.UnixMicro(im.Since).UTC()
		}
		for st, name := range stateNames {
			if name == im.State {
				out[i].State = st
			}
		}
		for _, v := range im.Variants {
			out[i].Variants = append(out[i].Variants, product.Variant(v))
		}
	}
	return out, nil
}

// wrote drops what a write touched from the caches, once it has ended.
func (s *Store) wrote(ids ...string) {
	s.products.Invalidate(ids...)
	s.pages.InvalidateAll()
}
