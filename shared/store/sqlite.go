// Package store opens the databases services keep their state in.
//
// SQLite (modernc.org/sqlite, pure Go) is the embedded default: one file per
// service, opened with WAL, a busy timeout, BEGIN IMMEDIATE transactions
// and foreign keys, and migrated from SQL files embedded in the service.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeoutMS is how long a connection waits for another's write lock
// before failing with SQLITE_BUSY. Writes here take well under a
// millisecond, so 5 s only runs out when something is badly stuck.
const busyTimeoutMS = 5000

// Migrations is a named, ordered set of schema changes: files named
// NNNN_description.sql, applied in order, each once, each in its own
// transaction. A service's store has its own set; shared tables (the
// outbox) come as sets of their own packages.
type Migrations struct {
	Name string
	FS   fs.FS
}

// OpenSQLite opens (creating if needed) the SQLite database at path and
// applies the migration sets, recording each set's version in the
// schema_migrations table. ":memory:" is not supported: every connection
// of the pool must see the same database.
func OpenSQLite(ctx context.Context, path string, sets ...Migrations) (*sql.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")",
		"foreign_keys(ON)",
		// NORMAL is durable in WAL mode except for the last transactions
		// before a power loss (not a process crash).
		"synchronous(NORMAL)",
	} {
		q.Add("_pragma", p)
	}
	// Writers take the write lock at BEGIN, so two read-modify-write
	// transactions never deadlock upgrading their locks.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// WAL readers run concurrently and writers one at a time. Keep as many
	// connections idle as may be busy, or a loaded instance closes and
	// reopens them (each open re-reads the schema); few enough that an idle
	// instance stays small.
	conns := max(2, 2*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	writers.Store(db, new(writer))
	if err := migrate(ctx, db, sets); err != nil {
		writers.Delete(db)
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

const schemaTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
  name    TEXT    PRIMARY KEY,
  version INTEGER NOT NULL
) STRICT`

func migrate(ctx context.Context, db *sql.DB, sets []Migrations) error {
	if _, err := db.ExecContext(ctx, schemaTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, set := range sets {
		files, err := fs.Glob(set.FS, "*.sql")
		if err != nil {
			return err
		}
		sort.Strings(files)
		var current int
		err = db.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE name = ?`, set.Name).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read schema version of %s: %w", set.Name, err)
		}
		for _, name := range files {
			n, _, ok := strings.Cut(name, "_")
			version, err := strconv.Atoi(n)
			if !ok || err != nil || version <= 0 {
				return fmt.Errorf("migration %s/%s: name must be NNNN_description.sql", set.Name, name)
			}
			if version <= current {
				continue
			}
			body, err := fs.ReadFile(set.FS, name)
			if err != nil {
				return err
			}
			if err := apply(ctx, db, set.Name, version, string(body)); err != nil {
				return fmt.Errorf("migration %s/%s: %w", set.Name, name, err)
			}
			current = version
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, set string, version int, body string) error {
	return InTx(ctx, db, func(tx *sql.Tx) error {
		// Another process may have migrated since we looked.
		var current int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_migrations WHERE name = ?`, set).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if current >= version {
			return nil
		}
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, version) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, set, version)
		return err
	})
}

// InTx runs fn in a transaction (BEGIN IMMEDIATE), committing if fn returns
// nil and rolling back its writes otherwise, and returns once they are
// committed. Concurrent calls on a database of OpenSQLite share a
// transaction (group commit, see groupcommit.go), each in its own
// savepoint, so fn must return the error of any statement that failed, and
// must be safe to run more than once: in the rare case SQLite rolls a
// shared transaction back, the other calls' functions run again. When ctx
// ends during the call, the error is ctx's (database/sql would report a
// bare "transaction done", which says nothing to a client).
func InTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	err := inTx(ctx, db, fn)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	w, ok := writers.Load(db)
	if !ok {
		return rethrow(runBatch(db, []*job{{fn: fn}})[0])
	}
	return rethrow(w.(*writer).do(ctx, db, fn))
}

// txDB maps the transactions open in InTx to their database.
var txDB sync.Map

// DBOf returns the database of tx, a transaction open in InTx (for
// statements prepared once per database and used in its transactions).
func DBOf(tx *sql.Tx) (*sql.DB, bool) {
	db, ok := txDB.Load(tx)
	if !ok {
		return nil, false
	}
	return db.(*sql.DB), true
}

// afterCommit holds the hooks of transactions open in InTx: *sql.Tx →
// *[]func(*sql.DB). Only transactions that registered a hook have an entry.
var afterCommit sync.Map

// AfterCommit runs f with the transaction's database once tx, a
// transaction of InTx, has committed; never if it rolls back. Hooks run
// in the committing goroutine, in order, so they must be quick (signal,
// don't work). A tx not opened by InTx never runs its hooks.
func AfterCommit(tx *sql.Tx, f func(db *sql.DB)) {
	v, _ := afterCommit.LoadOrStore(tx, new([]func(*sql.DB)))
	hooks := v.(*[]func(*sql.DB))
	*hooks = append(*hooks, f) // a tx is used by one goroutine at a time
}

// IsUniqueViolation reports whether err is SQLite refusing a row that
// breaks a UNIQUE or PRIMARY KEY constraint.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// Statement is a query to prepare once and where to keep it.
type Statement struct {
	Dst **sql.Stmt
	SQL string
}

// Prepare prepares the statements on db (parsing SQL costs more than
// running a point query, so hot queries are prepared once). On failure it
// closes db: a store without its statements is unusable.
func Prepare(ctx context.Context, db *sql.DB, stmts []Statement) error {
	for _, s := range stmts {
		st, err := db.PrepareContext(ctx, s.SQL)
		if err != nil {
			db.Close()
			return fmt.Errorf("prepare %q: %w", s.SQL, err)
		}
		*s.Dst = st
	}
	return nil
}
