// Package supportdb keeps chat rooms and their messages in SQLite, and
// delivers them to the participants connected to this instance (Hub).
//
// One instance owns its SQLite file, so every participant of a room is
// connected to the instance that stores the room's messages, and an
// in-process broadcast reaches them all. A deployment with several
// instances keeps the chat.Hub contract with a cloud adapter instead:
// Firestore listeners on a room's messages (or Pub/Sub with the room as the
// ordering key); see chat.Hub.
package supportdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
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
	return store.Migrations{Name: "support", FS: sub}
}

const columns = `room_id, seq, id, author_id, author_name, from_agent, text, client_message_id, create_time`

// The statements, prepared once: parsing SQL costs more than running these
// short queries.
const (
	sqlInsert     = `INSERT INTO messages (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlByClientID = `SELECT ` + columns + ` FROM messages WHERE room_id = ? AND author_id = ? AND client_message_id = ?`
	sqlAfter      = `SELECT ` + columns + ` FROM messages WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	// sqlNextSeq creates the room on its first message.
	sqlNextSeq = `INSERT INTO rooms (id, last_seq, create_time) VALUES (?, 1, ?)
		ON CONFLICT (id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq`
	sqlLastSeq = `SELECT last_seq FROM rooms WHERE id = ?`
	sqlOwner   = `SELECT owner_id FROM rooms WHERE id = ?`
	// sqlClaim sets the owner only if there is none, and returns the owner.
	sqlClaim = `INSERT INTO rooms (id, owner_id, create_time) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner_id = iif(owner_id = '', excluded.owner_id, owner_id) RETURNING owner_id`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	insert, byClientID, after, nextSeq, lastSeq, owner, claim *sql.Stmt
}

// Store is chat.Store on SQLite.
type Store struct {
	open *store.Opening[*db]
}

var _ chat.Store = (*Store)(nil)

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
		if err := store.Prepare(ctx, sqlDB, []store.Statement{
			{Dst: &d.insert, SQL: sqlInsert}, {Dst: &d.byClientID, SQL: sqlByClientID}, {Dst: &d.after, SQL: sqlAfter},
			{Dst: &d.nextSeq, SQL: sqlNextSeq}, {Dst: &d.lastSeq, SQL: sqlLastSeq}, {Dst: &d.owner, SQL: sqlOwner}, {Dst: &d.claim, SQL: sqlClaim},
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

// Close closes the database (waiting for it to open first).
func (s *Store) Close() error {
	d, err := s.open.Wait()
	if err != nil {
		return nil // nothing was left open
	}
	return d.Close() // closes the statements too
}

// Append implements chat.Store.
func (s *Store) Append(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return chat.Message{}, false, err
	}
	fresh := true
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		if m.ClientMessageID != "" {
			prev, found, err := scanOne(tx.StmtContext(ctx, d.byClientID).QueryContext(ctx, m.Room, m.AuthorID, m.ClientMessageID))
			if err != nil {
				return err
			}
			if found {
				m, fresh = prev, false
				return nil
			}
		}
		if err := tx.StmtContext(ctx, d.nextSeq).QueryRowContext(ctx, m.Room, m.Created.UnixMicro()).Scan(&m.Seq); err != nil {
			return fmt.Errorf("next seq of %s: %w", m.Room, err)
		}
		_, err := tx.StmtContext(ctx, d.insert).ExecContext(ctx, m.Room, m.Seq, m.ID, m.AuthorID, m.AuthorName,
			m.FromAgent, m.Text, m.ClientMessageID, m.Created.UnixMicro())
		if err != nil {
			return fmt.Errorf("insert message: %w", err)
		}
		return nil
	})
	if err != nil {
		return chat.Message{}, false, err
	}
	return m, fresh, nil
}

// After implements chat.Store.
func (s *Store) After(ctx context.Context, room string, after int64, limit int) ([]chat.Message, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return nil, err
	}
	// Detached like a point read: callers bound limit to a few hundred
	// rows of one room, read from the primary key in well under a
	// millisecond.
	rows, err := d.after.QueryContext(pointRead(ctx), room, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", room, err)
	}
	defer rows.Close()
	out := make([]chat.Message, 0, min(limit, 64))
	for rows.Next() {
		m, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", room, err)
	}
	return out, nil
}

// LastSeq implements chat.Store.
func (s *Store) LastSeq(ctx context.Context, room string) (int64, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return 0, err
	}
	var seq int64
	err = d.lastSeq.QueryRowContext(pointRead(ctx), room).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read last seq of %s: %w", room, err)
	}
	return seq, nil
}

// Owner implements chat.Store.
func (s *Store) Owner(ctx context.Context, room string) (string, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return "", err
	}
	return owner(d.owner.QueryRowContext(pointRead(ctx), room))
}

// Claim implements chat.Store. Only the first claim writes; later ones
// read.
func (s *Store) Claim(ctx context.Context, room, user string) (string, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return "", err
	}
	if o, err := owner(d.owner.QueryRowContext(pointRead(ctx), room)); err != nil || o != "" {
		return o, err
	}
	var o string
	if err := d.claim.QueryRowContext(ctx, room, user, time.Now().UnixMicro()).Scan(&o); err != nil {
		return "", fmt.Errorf("claim %s: %w", room, err)
	}
	return o, nil
}

func owner(row *sql.Row) (string, error) {
	var o string
	err := row.Scan(&o)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read room owner: %w", err)
	}
	return o, nil
}

// pointRead detaches a short lookup by key from its request's
// cancellation: it takes microseconds, and a cancellable context makes the
// driver start a goroutine per query to watch it.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// scanOne reads at most one message from rows and closes them.
func scanOne(rows *sql.Rows, err error) (chat.Message, bool, error) {
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("read message: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return chat.Message{}, false, fmt.Errorf("read message: %w", err)
		}
		return chat.Message{}, false, nil
	}
	m, err := scan(rows)
	return m, err == nil, err
}

func scan(rows *sql.Rows) (chat.Message, error) {
	var (
		m       chat.Message
		created int64
	)
	err := rows.Scan(&m.Room, &m.Seq, &m.ID, &m.AuthorID, &m.AuthorName, &m.FromAgent, &m.Text, &m.ClientMessageID, &created)
	if err != nil {
		return chat.Message{}, fmt.Errorf("read message: %w", err)
	}
	m.Created = time.UnixMicro(created).UTC()
	return m, nil
}
