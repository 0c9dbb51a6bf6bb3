// Package inventorydb stores stock and reservations in SQLite, with the
// outbox of the events their changes record.
package inventorydb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
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
	return store.Migrations{Name: "inventory", FS: sub}
}

// Source is the CloudEvent source of the events inventory records.
const Source = "//shopfn/inventory"

// The statements, prepared once: parsing SQL costs more than running these
// point queries, and Reserve runs several per line.
const (
	sqlStock    = `SELECT on_hand, reserved, update_time FROM stock WHERE sku = ?`
	sqlPutStock = `INSERT INTO stock (sku, on_hand, reserved, update_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, reserved = excluded.reserved, update_time = excluded.update_time`
	sqlReservation = `SELECT r.state, r.expire_time, r.create_time, r.update_time, l.sku, l.quantity
		FROM reservations r LEFT JOIN reservation_lines l ON l.order_id = r.order_id
		WHERE r.order_id = ? ORDER BY l.pos`
	sqlInsertReservation = `INSERT INTO reservations (order_id, state, expire_time, create_time, update_time) VALUES (?, ?, ?, ?, ?)`
	sqlInsertLine        = `INSERT INTO reservation_lines (order_id, pos, sku, quantity) VALUES (?, ?, ?, ?)`
	sqlSetState          = `UPDATE reservations SET state = ?, update_time = ? WHERE order_id = ?`
	sqlExpired           = `SELECT order_id FROM reservations WHERE state = 'reserved' AND expire_time < ?
		ORDER BY expire_time LIMIT ?`
	sqlExpiredHolding = `SELECT order_id FROM reservations r WHERE state = 'reserved' AND expire_time < ?
		AND EXISTS (SELECT 1 FROM reservation_lines l WHERE l.order_id = r.order_id AND l.sku = ?)
		ORDER BY expire_time LIMIT ?`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	stock, putStock, reservation, insertReservation, insertLine, setState, expired, expiredHolding *sql.Stmt
}

// Store is stock.Store on SQLite.
type Store struct {
	open  *store.Opening[*db]
	cache *store.Cache[string, stock.Stock]
}

var _ stock.Store = (*Store)(nil)

// Open starts opening (creating, migrating, preparing) the database at path
// in the background and returns the store at once; its calls wait for the
// database. Done and Err report when it is ready, or why it failed. Up to
// cacheSize SKUs read by Stock are kept in memory (0 turns that off); the
// process must be the only writer of the file, as it is for one instance.
func Open(ctx context.Context, path string, cacheSize int) *Store {
	return &Store{cache: store.NewCache[string, stock.Stock](cacheSize), open: store.InBackground(func() (*db, error) {
		sqlDB, err := store.OpenSQLite(ctx, path, Migrations(), outbox.Migrations())
		if err != nil {
			return nil, err
		}
		d := &db{DB: sqlDB}
		if err := store.Prepare(ctx, sqlDB, []store.Statement{
			{Dst: &d.stock, SQL: sqlStock}, {Dst: &d.putStock, SQL: sqlPutStock}, {Dst: &d.reservation, SQL: sqlReservation},
			{Dst: &d.insertReservation, SQL: sqlInsertReservation}, {Dst: &d.insertLine, SQL: sqlInsertLine},
			{Dst: &d.setState, SQL: sqlSetState}, {Dst: &d.expired, SQL: sqlExpired}, {Dst: &d.expiredHolding, SQL: sqlExpiredHolding},
		}); err != nil {
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

// Stock implements stock.Store.
func (s *Store) Stock(ctx context.Context, sku string) (stock.Stock, error) {
	st, gen, ok := s.cache.Get(sku)
	if ok {
		return st, nil
	}
	d, err := s.open.Get(ctx)
	if err != nil {
		return stock.Stock{}, err
	}
	st, err = scanStock(sku, d.stock.QueryRowContext(pointRead(ctx), sku))
	if err != nil {
		return stock.Stock{}, err
	}
	s.cache.Fill(sku, st, gen)
	return st, nil
}

// InTx implements stock.Store. Transactions begin IMMEDIATE (store.OpenSQLite),
// so each holds the write lock from its first statement and read-modify-write
// cycles never interleave. A context that has ended begins nothing, and one
// that ends during the transaction rolls it back.
func (s *Store) InTx(ctx context.Context, fn func(stock.Tx) error) error {
	d, err := s.open.Get(ctx)
	if err != nil {
		return err
	}
	t := &tx{ctx: ctx, stmtCtx: context.WithoutCancel(ctx), db: d}
	err = store.InTx(ctx, d.DB, func(sqlTx *sql.Tx) error {
		t.tx = sqlTx
		return fn(t)
	})
	// Drop even when the commit failed: whether it happened is unknown.
	s.cache.Invalidate(t.wrote...)
	if err != nil && ctx.Err() != nil {
		// database/sql reports a transaction whose context ended as done;
		// the context's error says why.
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// pointRead detaches a one-row lookup by key from its request's
// cancellation: it takes microseconds, and a cancellable context makes the
// driver start a goroutine per query to watch it. Writes keep the request's
// context, so a caller's deadline stops them.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// tx is stock.Tx on one SQLite transaction.
//
// Its statements run with stmtCtx, the request's context without its
// cancellation: a cancellable context makes the driver start a goroutine
// per statement to watch it. The transaction itself keeps the request's
// context (database/sql rolls it back when that ends), and every statement
// checks it first.
type tx struct {
	ctx, stmtCtx context.Context
	tx           *sql.Tx
	db           *db
	wrote        []string // SKUs whose stock row this transaction wrote
}

// stmt returns s for this transaction, or the context's error once it has
// ended.
func (t *tx) stmt(s *sql.Stmt) (*sql.Stmt, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	return t.tx.StmtContext(t.stmtCtx, s), nil
}

func (t *tx) Stock(sku string) (stock.Stock, error) {
	q, err := t.stmt(t.db.stock)
	if err != nil {
		return stock.Stock{}, err
	}
	return scanStock(sku, q.QueryRowContext(t.stmtCtx, sku))
}

func (t *tx) PutStock(s stock.Stock) error {
	q, err := t.stmt(t.db.putStock)
	if err != nil {
		return err
	}
	t.wrote = append(t.wrote, s.SKU)
	if _, err := q.ExecContext(t.stmtCtx, s.SKU, s.OnHand, s.Reserved, s.Updated.UnixMicro()); err != nil {
		return fmt.Errorf("write stock of %s: %w", s.SKU, err)
	}
	return nil
}

func (t *tx) Reservation(orderID string) (stock.Reservation, error) {
	q, err := t.stmt(t.db.reservation)
	if err != nil {
		return stock.Reservation{}, err
	}
	rows, err := q.QueryContext(t.stmtCtx, orderID)
	if err != nil {
		return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", orderID, err)
	}
	defer rows.Close()
	r := stock.Reservation{OrderID: orderID}
	found := false
	for rows.Next() {
		var (
			state                     string
			expires, created, updated int64
			sku                       sql.NullString // NULL: a release's tombstone has no lines
			quantity                  sql.NullInt64
		)
		if err := rows.Scan(&state, &expires, &created, &updated, &sku, &quantity); err != nil {
			return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", orderID, err)
		}
		if r.State, err = stock.ParseState(state); err != nil {
			return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", orderID, err)
		}
		r.Expires, r.Created, r.Updated = micros(expires), micros(created), micros(updated)
		if sku.Valid {
			r.Lines = append(r.Lines, stock.Line{SKU: sku.String, Quantity: quantity.Int64})
		}
		found = true
	}
	if err := rows.Err(); err != nil {
		return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", orderID, err)
	}
	if !found {
		return stock.Reservation{}, stock.ErrReservationNotFound
	}
	return r, nil
}

func (t *tx) CreateReservation(r stock.Reservation) error {
	q, err := t.stmt(t.db.insertReservation)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(t.stmtCtx, r.OrderID, r.State.String(), r.Expires.UnixMicro(), r.Created.UnixMicro(), r.Updated.UnixMicro())
	if err != nil {
		return fmt.Errorf("insert reservation %s: %w", r.OrderID, err)
	}
	for i, l := range r.Lines {
		ins, err := t.stmt(t.db.insertLine)
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(t.stmtCtx, r.OrderID, i, l.SKU, l.Quantity); err != nil {
			return fmt.Errorf("insert line %d of reservation %s: %w", i, r.OrderID, err)
		}
	}
	return nil
}

func (t *tx) SetState(orderID string, s stock.State, updated time.Time) error {
	q, err := t.stmt(t.db.setState)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(t.stmtCtx, s.String(), updated.UnixMicro(), orderID)
	if err != nil {
		return fmt.Errorf("update reservation %s: %w", orderID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return stock.ErrReservationNotFound
	}
	return nil
}

func (t *tx) Expired(now time.Time, sku string, limit int) ([]string, error) {
	stmt, args := t.db.expired, []any{now.UnixMicro(), limit}
	if sku != "" {
		stmt, args = t.db.expiredHolding, []any{now.UnixMicro(), sku, limit}
	}
	q, err := t.stmt(stmt)
	if err != nil {
		return nil, err
	}
	ids, err := store.Strings(q.QueryContext(t.stmtCtx, args...))
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	return ids, nil
}

func (t *tx) RecordLowStock(e stock.LowStock) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	_, err := outbox.Append(t.stmtCtx, t.tx, outbox.Event{
		Type:        outbox.TypeLowStock,
		Source:      Source,
		Subject:     e.SKU,
		OrderingKey: e.SKU,
		Time:        e.Time,
		Data:        &eventsv1.LowStock{Sku: e.SKU, Available: e.Available, Threshold: e.Threshold},
	})
	return err
}

func scanStock(sku string, row *sql.Row) (stock.Stock, error) {
	s := stock.Stock{SKU: sku}
	var updated int64
	err := row.Scan(&s.OnHand, &s.Reserved, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return stock.Stock{}, stock.ErrSKUNotFound
	}
	if err != nil {
		return stock.Stock{}, fmt.Errorf("read stock of %s: %w", sku, err)
	}
	s.Updated = micros(updated)
	return s, nil
}

func micros(us int64) time.Time { return time.UnixMicro(us).UTC() }
