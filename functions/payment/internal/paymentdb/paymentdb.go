// Package paymentdb stores payments, and the simulated processor's attempt
// counts, in SQLite.
package paymentdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shopfn/shopfn/functions/payment/internal/cardsim"
	"github.com/shopfn/shopfn/functions/payment/internal/charge"
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
	return store.Migrations{Name: "payment", FS: sub}
}

const columns = `order_id, id, state, payment_token, currency_code, amount_minor, captured_minor, refunded_minor,
	card_brand, card_last4, decline_code, create_time, update_time`

// The statements, prepared once: parsing SQL costs more than running these
// point queries.
const (
	sqlGet    = `SELECT ` + columns + ` FROM payments WHERE order_id = ?`
	sqlInsert = `INSERT INTO payments (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlUpdate = `UPDATE payments SET state = ?, captured_minor = ?, refunded_minor = ?, update_time = ? WHERE order_id = ?`
	sqlNext   = `INSERT INTO processor_attempts (order_id, attempts) VALUES (?, 1)
		ON CONFLICT (order_id) DO UPDATE SET attempts = attempts + 1 RETURNING attempts`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	get, insert, update, next *sql.Stmt
}

// Store is charge.Store, and cardsim.Attempts, on SQLite.
type Store struct {
	open *store.Opening[*db]
}

var (
	_ charge.Store     = (*Store)(nil)
	_ cardsim.Attempts = (*Store)(nil)
)

// Open starts opening (creating, migrating, preparing) the database at path
// in the background and returns the store at once; its calls wait for the
// database. Done and Err report when it is ready, or why it failed.
func Open(ctx context.Context, path string) *Store {
	return &Store{open: store.InBackground(func() (*db, error) {
		sqlDB, err := store.OpenSQLite(ctx, path, Migrations())
		if err != nil {
			return nil, err
		}
		d := &db{DB: sqlDB}
		if err := store.Prepare(ctx, sqlDB, []store.Statement{{Dst: &d.get, SQL: sqlGet}, {Dst: &d.insert, SQL: sqlInsert}, {Dst: &d.update, SQL: sqlUpdate}, {Dst: &d.next, SQL: sqlNext}}); err != nil {
			return nil, err
		}
		return d, nil
	})}
}

// Done is closed when the database is open or failed to open (see Err).
func (s *Store) Done() <-chan struct{} { return s.open.Done() }

// Err returns why the database failed to open, once Done is closed.
func (s *Store) Err() error { return s.open.Err() }

// Close closes the database (waiting for it to open first).
func (s *Store) Close() error {
	d, err := s.open.Wait()
	if err != nil {
		return nil // nothing was left open
	}
	return d.Close() // closes the statements too
}

// Get implements charge.Store.
func (s *Store) Get(ctx context.Context, orderID string) (charge.Payment, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return charge.Payment{}, err
	}
	return scan(d.get.QueryRowContext(pointRead(ctx), orderID))
}

// Create implements charge.Store.
func (s *Store) Create(ctx context.Context, p charge.Payment) error {
	d, err := s.open.Get(ctx)
	if err != nil {
		return err
	}
	// Through InTx, so the insert shares a commit with concurrent writes.
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, d.insert).ExecContext(ctx, p.OrderID, p.ID, string(p.State), p.Token, p.Amount.Currency, p.Amount.Minor,
			p.Captured, p.Refunded, p.CardBrand, p.CardLast4, p.DeclineCode, p.Created.UnixMicro(), p.Updated.UnixMicro())
		return err
	})
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("insert payment: %w", charge.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// Update implements charge.Store. Only the state, the captured and
// refunded amounts and the update time can change.
func (s *Store) Update(ctx context.Context, orderID string, fn func(*charge.Payment) error) (charge.Payment, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return charge.Payment{}, err
	}
	var p charge.Payment
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		old, err := scan(tx.StmtContext(ctx, d.get).QueryRowContext(ctx, orderID))
		if err != nil {
			return err
		}
		changed := old
		if err := fn(&changed); err != nil {
			return err
		}
		// What the UPDATE leaves alone stays as it was.
		p = old
		p.State, p.Captured, p.Refunded, p.Updated = changed.State, changed.Captured, changed.Refunded, changed.Updated
		_, err = tx.StmtContext(ctx, d.update).ExecContext(ctx, string(p.State), p.Captured, p.Refunded, p.Updated.UnixMicro(), orderID)
		if err != nil {
			return fmt.Errorf("update payment: %w", err)
		}
		return nil
	})
	if err != nil {
		return charge.Payment{}, err
	}
	return p, nil
}

// NextAttempt implements cardsim.Attempts in one atomic statement.
func (s *Store) NextAttempt(ctx context.Context, orderID string) (int, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return 0, err
	}
	var n int
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		return tx.StmtContext(ctx, d.next).QueryRowContext(ctx, orderID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("count processor attempt: %w", err)
	}
	return n, nil
}

// pointRead detaches a one-row lookup by key from its request's
// cancellation: it takes microseconds, and a cancellable context makes the
// driver start a goroutine per query to watch it.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func scan(row *sql.Row) (charge.Payment, error) {
	var (
		p                charge.Payment
		state            string
		created, updated int64
	)
	err := row.Scan(&p.OrderID, &p.ID, &state, &p.Token, &p.Amount.Currency, &p.Amount.Minor, &p.Captured, &p.Refunded,
		&p.CardBrand, &p.CardLast4, &p.DeclineCode, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return charge.Payment{}, charge.ErrNotFound
	}
	if err != nil {
		return charge.Payment{}, fmt.Errorf("read payment: %w", err)
	}
	p.State = charge.State(state)
	p.Created, p.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return p, nil
}
