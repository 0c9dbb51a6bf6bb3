// Package outbox records events in the same SQLite transaction as the state
// change they announce (the transactional outbox), so that an event is
// published if and only if its change committed. Publishing the rows is the
// relay's job (shared/events); this package only writes and reads them,
// and tells the relay when a transaction with events has committed
// (Committed), so that publishing starts at once instead of at the next
// sweep.
package outbox

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/shared/store"
)

// The CloudEvent types shopfn publishes; the data of each is the message of
// proto/shopfn/events/v1 named in the comment.
const (
	TypeOrderConfirmed = "order.confirmed"        // eventsv1.OrderConfirmed
	TypeOrderCancelled = "order.cancelled"        // eventsv1.OrderCancelled
	TypeImageUploaded  = "catalog.image.uploaded" // eventsv1.ImageUploaded
	TypeLowStock       = "inventory.low_stock"    // eventsv1.LowStock
)

// DataContentType is the CloudEvents datacontenttype of every event's data:
// protobuf's canonical JSON.
const DataContentType = "application/json"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations creates the outbox table; add it to the store's migration sets.
func Migrations() store.Migrations {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return store.Migrations{Name: "outbox", FS: sub}
}

// Event is a CloudEvent to publish once the transaction recording it
// commits.
type Event struct {
	// ID is the CloudEvent id, unique per source; consumers deduplicate by
	// it. Empty means a new random id. Give a deterministic id when the same
	// change could be recorded twice (it then fails as a duplicate).
	ID string
	// Type is one of the Type constants.
	Type string
	// Source names the producing service, e.g. "//shopfn/catalog".
	Source string
	// Subject is the aggregate the event is about (product, order, SKU id).
	Subject string
	// OrderingKey makes Pub/Sub deliver this aggregate's events in order;
	// empty when order does not matter.
	OrderingKey string
	// Time is when the change happened.
	Time time.Time
	// Data is the payload, a message of proto/shopfn/events/v1.
	Data proto.Message
}

// Append records e in tx and returns its id. The trace context of ctx is
// recorded with it. Once tx commits (it must be a store.InTx transaction),
// Committed(db) is signalled.
func Append(ctx context.Context, tx *sql.Tx, e Event) (string, error) {
	if e.Type == "" || e.Source == "" || e.Data == nil {
		return "", fmt.Errorf("outbox: event needs a type, a source and data")
	}
	data, err := protojson.Marshal(e.Data)
	if err != nil {
		return "", fmt.Errorf("outbox: encode %s: %w", e.Type, err)
	}
	if e.ID == "" {
		e.ID = store.NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	args := []any{e.ID, e.Type, e.Source, e.Subject, e.OrderingKey, e.Time.UnixMicro(), data, carrier.Get("traceparent")}
	if stmt := prepared(tx, sqlInsert); stmt != nil {
		_, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
	} else {
		_, err = tx.ExecContext(ctx, sqlInsert, args...)
	}
	if err != nil {
		return "", fmt.Errorf("outbox: insert %s: %w", e.Type, err)
	}
	store.AfterCommit(tx, signal)
	return e.ID, nil
}

const sqlMarkSent = `UPDATE outbox SET sent_time = ? WHERE sent_time IS NULL AND id IN (SELECT value FROM json_each(?))`

const sqlInsert = `INSERT INTO outbox (id, type, source, subject, ordering_key, time, data, traceparent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// statements caches the outbox's prepared statements: {*sql.DB, SQL} →
// *sql.Stmt. Parsing the SQL of every insert cost more than the insert.
var statements sync.Map

type stmtKey struct {
	db  *sql.DB
	sql string
}

// prepared returns the statement prepared on tx's database, or nil when tx
// is not an InTx transaction or preparing failed (then the caller runs the
// SQL unprepared, and the failure shows there).
func prepared(tx *sql.Tx, query string) *sql.Stmt {
	db, ok := store.DBOf(tx)
	if !ok {
		return nil
	}
	return preparedOn(db, query)
}

// preparedOn returns query prepared on db, cached; nil if it fails.
func preparedOn(db *sql.DB, query string) *sql.Stmt {
	k := stmtKey{db, query}
	if s, ok := statements.Load(k); ok {
		return s.(*sql.Stmt)
	}
	s, err := db.Prepare(query)
	if err != nil {
		return nil
	}
	if old, loaded := statements.LoadOrStore(k, s); loaded {
		s.Close()
		return old.(*sql.Stmt)
	}
	return s
}

// signals holds one coalescing channel per database: *sql.DB → chan struct{}.
var signals sync.Map

func signalChan(db *sql.DB) chan struct{} {
	if c, ok := signals.Load(db); ok {
		return c.(chan struct{})
	}
	c, _ := signals.LoadOrStore(db, make(chan struct{}, 1))
	return c.(chan struct{})
}

func signal(db *sql.DB) {
	select {
	case signalChan(db) <- struct{}{}:
	default: // a signal is already pending; the relay reads every unsent row
	}
}

// Committed returns the channel that receives a value after a transaction
// that appended events to db's outbox commits. Signals coalesce: one value
// may stand for many commits, so the reader publishes every unsent row.
func Committed(db *sql.DB) <-chan struct{} { return signalChan(db) }

// Row is a recorded event as the relay reads it: Data is the protobuf JSON.
type Row struct {
	Seq         int64
	ID          string
	Type        string
	Source      string
	Subject     string
	OrderingKey string
	Time        time.Time
	Data        []byte
	Sent        bool
	// Traceparent is the W3C trace context of the recording request;
	// empty when it was not traced.
	Traceparent string
}

// Unsent returns up to limit events not yet published, oldest first.
func Unsent(ctx context.Context, db *sql.DB, limit int) ([]Row, error) {
	return query(ctx, db, `SELECT seq, id, type, source, subject, ordering_key, time, data, sent_time IS NOT NULL, traceparent
		FROM outbox WHERE sent_time IS NULL ORDER BY seq LIMIT ?`, limit)
}

// All returns every recorded event, oldest first, sent or not (for tests
// and inspection).
func All(ctx context.Context, db *sql.DB) ([]Row, error) {
	return query(ctx, db, `SELECT seq, id, type, source, subject, ordering_key, time, data, sent_time IS NOT NULL, traceparent
		FROM outbox ORDER BY seq`)
}

func query(ctx context.Context, db *sql.DB, q string, args ...any) ([]Row, error) {
	var rows *sql.Rows
	var err error
	if stmt := preparedOn(db, q); stmt != nil {
		rows, err = stmt.QueryContext(ctx, args...)
	} else {
		rows, err = db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var t int64
		if err := rows.Scan(&r.Seq, &r.ID, &r.Type, &r.Source, &r.Subject, &r.OrderingKey, &t, &r.Data, &r.Sent, &r.Traceparent); err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		r.Time = time.UnixMicro(t).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkSent records that the events with these ids were published.
func MarkSent(ctx context.Context, db *sql.DB, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return store.InTx(ctx, db, func(tx *sql.Tx) error {
		// One statement for the whole batch: json_each turns the list into
		// rows, and the unique index on id finds each.
		args := []any{time.Now().UnixMicro(), string(list)}
		var err error
		if stmt := preparedOn(db, sqlMarkSent); stmt != nil {
			_, err = tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, sqlMarkSent, args...)
		}
		if err != nil {
			return fmt.Errorf("outbox: mark %d events sent: %w", len(ids), err)
		}
		return nil
	})
}

// pruneBatch bounds one Prune transaction, so that pruning a large
// backlog does not hold the writer lock for long.
const pruneBatch = 1000

// Prune deletes events sent before cutoff and reports how many.
func Prune(ctx context.Context, db *sql.DB, cutoff time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := store.InTx(ctx, db, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE sent_time IS NOT NULL AND sent_time < ? LIMIT ?)`,
				cutoff.UnixMicro(), pruneBatch)
			if err != nil {
				return fmt.Errorf("outbox: prune: %w", err)
			}
			n, err = res.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}

// Decode unmarshals a row's data into m.
func (r Row) Decode(m proto.Message) error {
	if err := protojson.Unmarshal(r.Data, m); err != nil {
		return fmt.Errorf("outbox: decode %s %s: %w", r.Type, r.ID, err)
	}
	return nil
}

// Store is an outbox as the relay reads it: SQLite (SQLite) or Firestore
// (package fsoutbox).
type Store interface {
	// Unsent returns up to limit events not yet published, oldest first.
	Unsent(ctx context.Context, limit int) ([]Row, error)
	// MarkSent records that the events with these ids were published.
	MarkSent(ctx context.Context, ids ...string) error
	// Prune deletes events sent before cutoff and reports how many.
	Prune(ctx context.Context, cutoff time.Time) (int, error)
	// Committed receives a value after transactions that appended events
	// committed; values coalesce.
	Committed() <-chan struct{}
}

// SQLite is the Store of a SQLite database with the outbox migrations.
func SQLite(db *sql.DB) Store { return sqliteStore{db} }

type sqliteStore struct{ db *sql.DB }

func (s sqliteStore) Unsent(ctx context.Context, limit int) ([]Row, error) {
	return Unsent(ctx, s.db, limit)
}
func (s sqliteStore) MarkSent(ctx context.Context, ids ...string) error {
	return MarkSent(ctx, s.db, ids...)
}
func (s sqliteStore) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	return Prune(ctx, s.db, cutoff)
}
func (s sqliteStore) Committed() <-chan struct{} { return Committed(s.db) }
