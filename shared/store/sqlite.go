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

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeoutMS is how long a connection waits for another's write lock
// before failing with SQLITE_BUSY. Writes here take well under a
// millisecond, so 5 s only runs out when something is badly stuck.
const busyTimeoutMS = 5000

// OpenSQLite opens (creating if needed) the SQLite database at path and
// applies the migrations in migrations: files named NNNN_name.sql, applied in
// order, each in its own transaction, recorded in PRAGMA user_version so each
// runs once. ":memory:" is not supported: every connection of the pool must
// see the same database.
func OpenSQLite(ctx context.Context, path string, migrations fs.FS) (*sql.DB, error) {
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
	if err := migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

func migrate(ctx context.Context, db *sql.DB, migrations fs.FS) error {
	files, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	var current int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, name := range files {
		n, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(n)
		if !ok || err != nil || version <= 0 {
			return fmt.Errorf("migration %q: name must be NNNN_description.sql", name)
		}
		if version <= current {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return err
		}
		if err := apply(ctx, db, version, string(body)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		current = version
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, version int, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have migrated since we looked.
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return err
	}
	if current >= version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(version)); err != nil {
		return err
	}
	return tx.Commit()
}

// InTx runs fn in a transaction (BEGIN IMMEDIATE), committing if fn returns
// nil and rolling back otherwise.
func InTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
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
