// Package orderdb stores orders in SQLite, with the outbox of their events.
package orderdb

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/order/internal/orders"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
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
	return store.Migrations{Name: "order", FS: sub}
}

// Source is the CloudEvents source of the order service's events.
const Source = "//shopfn/order"

const columns = `id, user_id, state, idempotency_key, request_hash, body, version, lease_owner, lease_until, create_time, update_time`

// The statements every saga step runs, prepared once: parsing SQL costs
// more than executing these.
const (
	sqlInsert = `INSERT INTO orders (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlByID   = `SELECT ` + columns + ` FROM orders WHERE id = ?`
	sqlByKey  = `SELECT ` + columns + ` FROM orders WHERE user_id = ? AND idempotency_key = ?`
	sqlUpdate = `UPDATE orders SET state = ?, body = ?, version = ?, lease_owner = ?, lease_until = ?, update_time = ? WHERE id = ?`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	insert, byID, byKey, update *sql.Stmt
}

// Store is orders.Store on SQLite.
type Store struct {
	open *store.Opening[*db]
}

var _ orders.Store = (*Store)(nil)

// Open starts opening (creating, migrating) the database at path in the
// background and returns the store at once; its calls wait for it.
func Open(ctx context.Context, path string) *Store {
	return &Store{open: store.InBackground(func() (*db, error) {
		sqlDB, err := store.OpenSQLite(ctx, path, Migrations(), outbox.Migrations())
		if err != nil {
			return nil, err
		}
		d := &db{DB: sqlDB}
		if err := store.Prepare(ctx, sqlDB, []store.Statement{{Dst: &d.insert, SQL: sqlInsert}, {Dst: &d.byID, SQL: sqlByID}, {Dst: &d.byKey, SQL: sqlByKey}, {Dst: &d.update, SQL: sqlUpdate}}); err != nil {
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
		return nil
	}
	return d.Close()
}

// Create implements orders.Store.
func (s *Store) Create(ctx context.Context, o orders.Order) (orders.Order, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	o.Version = 1
	body, err := encode(o)
	if err != nil {
		return orders.Order{}, err
	}
	// Through InTx, so the insert shares a commit with concurrent writes.
	err = store.InTx(ctx, db.DB, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.insert).ExecContext(ctx,
			o.ID, o.UserID, string(o.State), o.IdempotencyKey, o.RequestHash, body, o.Version,
			o.LeaseOwner, o.LeaseUntil.UnixMicro(), o.Created.UnixMicro(), o.Updated.UnixMicro())
		return err
	})
	if store.IsUniqueViolation(err) {
		existing, gerr := s.ByIdempotencyKey(ctx, o.UserID, o.IdempotencyKey)
		if gerr != nil {
			return orders.Order{}, gerr
		}
		return existing, orders.ErrDuplicateKey
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("insert order: %w", err)
	}
	return o, nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	return scan(db.byID.QueryRowContext(context.WithoutCancel(ctx), id))
}

// ByIdempotencyKey implements orders.Store.
func (s *Store) ByIdempotencyKey(ctx context.Context, userID, key string) (orders.Order, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	return scan(db.byKey.QueryRowContext(context.WithoutCancel(ctx), userID, key))
}

// List implements orders.Store.
func (s *Store) List(ctx context.Context, userID string, after orders.Cursor, limit int) ([]orders.Order, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + columns + ` FROM orders WHERE 1=1`
	var args []any
	if userID != "" {
		q += ` AND user_id = ?`
		args = append(args, userID)
	}
	if after.ID != "" {
		q += ` AND (create_time < ? OR (create_time = ? AND id < ?))`
		t := after.Created.UnixMicro()
		args = append(args, t, t, after.ID)
	}
	q += ` ORDER BY create_time DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	var out []orders.Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Unfinished implements orders.Store.
func (s *Store) Unfinished(ctx context.Context, before time.Time, limit int) ([]string, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := store.Strings(db.QueryContext(ctx, `SELECT id FROM orders
		WHERE state NOT IN ('CONFIRMED', 'CANCELLED') AND update_time <= ? AND lease_until <= ?
		ORDER BY update_time LIMIT ?`, before.UnixMicro(), time.Now().UnixMicro(), limit))
	if err != nil {
		return nil, fmt.Errorf("find unfinished orders: %w", err)
	}
	return ids, nil
}

// Update implements orders.Store. A move to CONFIRMED or CANCELLED records
// order.confirmed or order.cancelled in the same transaction.
func (s *Store) Update(ctx context.Context, id string, fn func(*orders.Order) error) (orders.Order, error) {
	db, err := s.open.Get(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	var o, stored orders.Order
	err = store.InTx(ctx, db.DB, func(tx *sql.Tx) error {
		var err error
		if o, err = scan(tx.StmtContext(ctx, db.byID).QueryRowContext(ctx, id)); err != nil {
			return err
		}
		stored = o
		stored.Lines = slices.Clone(o.Lines)
		before := o.State
		if err := fn(&o); err != nil {
			return err
		}
		o.Version++
		body, err := encode(o)
		if err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, db.update).ExecContext(ctx,
			string(o.State), body, o.Version, o.LeaseOwner, o.LeaseUntil.UnixMicro(), o.Updated.UnixMicro(), id); err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		if o.State != before {
			return recordEvent(ctx, tx, o)
		}
		return nil
	})
	if errors.Is(err, orders.ErrUnchanged) {
		return stored, nil // as stored: fn may have touched o
	}
	return o, err
}

// recordEvent appends the event of a move to a terminal state.
func recordEvent(ctx context.Context, tx *sql.Tx, o orders.Order) error {
	e := outbox.Event{Source: Source, Subject: o.ID, OrderingKey: o.ID, Time: o.Updated}
	switch o.State {
	case orders.Confirmed:
		e.ID, e.Type = o.ID+"-confirmed", outbox.TypeOrderConfirmed
		e.Data = &eventsv1.OrderConfirmed{
			OrderId: o.ID, UserId: o.UserID,
			Total:       &commonv1.Money{CurrencyCode: o.Total.Currency, AmountMinor: o.Total.Minor},
			ConfirmTime: timestamppb.New(o.Updated),
		}
	case orders.Cancelled:
		e.ID, e.Type = o.ID+"-cancelled", outbox.TypeOrderCancelled
		e.Data = &eventsv1.OrderCancelled{OrderId: o.ID, UserId: o.UserID, Reason: o.CancelReason, CancelTime: timestamppb.New(o.Updated)}
	default:
		return nil
	}
	_, err := outbox.Append(ctx, tx, e)
	return err
}

// body is the stored form of what the columns do not hold.
type body struct {
	Lines           []orders.Line        `json:"lines"`
	Subtotal        orders.Money         `json:"subtotal"`
	Tax             orders.Money         `json:"tax"`
	Total           orders.Money         `json:"total"`
	Address         []byte               `json:"address,omitempty"` // binary shopfn.common.v1.Address
	PaymentToken    string               `json:"payment_token,omitempty"`
	CancelReason    errorsv1.ErrorReason `json:"cancel_reason,omitempty"`
	CancelMessage   string               `json:"cancel_message,omitempty"`
	CancelRequested bool                 `json:"cancel_requested,omitempty"`
	Invoice         *orders.Invoice      `json:"invoice,omitempty"`
	Committed       bool                 `json:"committed,omitempty"`
	Captured        bool                 `json:"captured,omitempty"`
}

func encode(o orders.Order) ([]byte, error) {
	b := body{
		Lines: o.Lines, Subtotal: o.Subtotal, Tax: o.Tax, Total: o.Total, PaymentToken: o.PaymentToken,
		CancelReason: o.CancelReason, CancelMessage: o.CancelMessage, CancelRequested: o.CancelRequested,
		Invoice: o.Invoice, Committed: o.Committed, Captured: o.Captured,
	}
	if o.Address != nil {
		addr, err := proto.Marshal(o.Address)
		if err != nil {
			return nil, fmt.Errorf("encode address: %w", err)
		}
		b.Address = addr
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode order: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (orders.Order, error) {
	var (
		o                            orders.Order
		state                        string
		raw                          []byte
		leaseUntil, created, updated int64
	)
	err := row.Scan(&o.ID, &o.UserID, &state, &o.IdempotencyKey, &o.RequestHash, &raw, &o.Version,
		&o.LeaseOwner, &leaseUntil, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return orders.Order{}, orders.ErrNotFound
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("read order: %w", err)
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		return orders.Order{}, fmt.Errorf("decode order %s: %w", o.ID, err)
	}
	o.State = orders.State(state)
	o.Lines, o.Subtotal, o.Tax, o.Total, o.PaymentToken = b.Lines, b.Subtotal, b.Tax, b.Total, b.PaymentToken
	o.CancelReason, o.CancelMessage, o.CancelRequested = b.CancelReason, b.CancelMessage, b.CancelRequested
	o.Invoice, o.Committed, o.Captured = b.Invoice, b.Committed, b.Captured
	if b.Address != nil {
		o.Address = &commonv1.Address{}
		if err := proto.Unmarshal(b.Address, o.Address); err != nil {
			return orders.Order{}, fmt.Errorf("decode address of %s: %w", o.ID, err)
		}
	}
	o.LeaseUntil = time.UnixMicro(leaseUntil)
	o.Created, o.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return o, nil
}
