package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/shopfn/shopfn/shared/store"
)

var migrations = store.Migrations{Name: "test", FS: os.DirFS("testdata/migrations")}

func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), path, migrations)
	if err != nil {
		t.Fatalf("OpenSQLite(%s) = %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "s.db")
	db := open(t, path)
	var version int
	var mode string
	if err := db.QueryRow("SELECT version FROM schema_migrations WHERE name = 'test'").Scan(&version); err != nil || version != 2 {
		t.Fatalf("schema version = %d, %v; want 2", version, err)
	}
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if _, err := db.Exec("INSERT INTO items VALUES ('a', 1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Reopening must not re-run 0001 (it would fail: table exists).
	db2 := open(t, path)
	var n int
	if err := db2.QueryRow("SELECT n FROM items WHERE id='a'").Scan(&n); err != nil || n != 1 {
		t.Errorf("after reopen SELECT = %d, %v; want 1", n, err)
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	if _, err := db.Exec("INSERT INTO parts VALUES ('missing', 'x')"); err == nil {
		t.Error("insert with a dangling foreign key succeeded, want an error")
	}
}

func TestBadMigrationLeavesNothing(t *testing.T) {
	bad := store.Migrations{Name: "bad", FS: fstest.MapFS{
		"0001_ok.sql":  {Data: []byte("CREATE TABLE a (x INT);")},
		"0002_bad.sql": {Data: []byte("CREATE TABLE b (x INT); INSERT INTO nope VALUES (1);")},
	}}
	path := filepath.Join(t.TempDir(), "s.db")
	if _, err := store.OpenSQLite(context.Background(), path, bad); err == nil {
		t.Fatal("OpenSQLite with a failing migration = nil error, want one")
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version, tables int
	db.QueryRow("SELECT version FROM schema_migrations WHERE name = 'bad'").Scan(&version)
	db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name='b'").Scan(&tables)
	if version != 1 || tables != 0 {
		t.Errorf("after failed 0002: version=%d, table b exists=%d; want 1 and 0", version, tables)
	}
}

func TestBadMigrationName(t *testing.T) {
	bad := store.Migrations{Name: "bad", FS: fstest.MapFS{"init.sql": {Data: []byte("SELECT 1;")}}}
	if _, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"), bad); err == nil {
		t.Error("OpenSQLite with a badly named migration = nil error, want one")
	}
}

// TestConcurrentReadModifyWrite increments one row from many goroutines in
// InTx: with immediate transactions and the busy timeout none may fail or
// lose an update.
func TestConcurrentReadModifyWrite(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	if _, err := db.Exec("INSERT INTO items VALUES ('hot', 0)"); err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- store.InTx(context.Background(), db, func(tx *sql.Tx) error {
					var n int
					if err := tx.QueryRow("SELECT n FROM items WHERE id='hot'").Scan(&n); err != nil {
						return err
					}
					_, err := tx.Exec("UPDATE items SET n=? WHERE id='hot'", n+1)
					return err
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("InTx = %v", err)
		}
	}
	var n int
	db.QueryRow("SELECT n FROM items WHERE id='hot'").Scan(&n)
	if n != workers*each {
		t.Errorf("counter = %d, want %d", n, workers*each)
	}
}

func TestInTxRollsBack(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	boom := errors.New("boom")
	err := store.InTx(context.Background(), db, func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO items VALUES ('x', 1)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM items").Scan(&n)
	if n != 0 {
		t.Errorf("rows after rollback = %d, want 0", n)
	}
}

func TestOpenInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	o := store.InBackground(func() (*sql.DB, error) { return store.OpenSQLite(context.Background(), path, migrations) })
	db, err := o.Get(context.Background())
	if err != nil {
		t.Fatalf("Get() = %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO items VALUES ('a', 1)"); err != nil {
		t.Fatal(err)
	}
	<-o.Done()
	if o.Err() != nil {
		t.Errorf("Err() = %v", o.Err())
	}

	bad := store.InBackground(func() (*sql.DB, error) {
		return store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "b.db"), store.Migrations{Name: "x", FS: fstest.MapFS{"x.sql": {Data: []byte("SELECT 1;")}}})
	})
	if _, err := bad.Get(context.Background()); err == nil {
		t.Error("Get() of a failed open = nil error")
	}
	if bad.Err() == nil {
		t.Error("Err() of a failed open = nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	block := make(chan struct{})
	defer close(block)
	slow := store.InBackground(func() (int, error) { <-block; return 0, nil })
	if _, err := slow.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Get(canceled) of an unfinished open = %v, want context.Canceled", err)
	}
}

func TestSetsAreIndependent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	other := store.Migrations{Name: "other", FS: fstest.MapFS{"0001_o.sql": {Data: []byte("CREATE TABLE o (x INT);")}}}
	db, err := store.OpenSQLite(context.Background(), path, migrations, other)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Adding a migration to one set applies just that one on the next open.
	other.FS.(fstest.MapFS)["0002_p.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE p (x INT);")}
	db, err = store.OpenSQLite(context.Background(), path, migrations, other)
	if err != nil {
		t.Fatalf("reopen with a new migration in one set = %v", err)
	}
	defer db.Close()
	var n int
	db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name IN ('items', 'parts', 'o', 'p')").Scan(&n)
	if n != 4 {
		t.Errorf("tables = %d, want 4", n)
	}
}

func TestInTxReportsTheContext(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	ctx, cancel := context.WithCancel(context.Background())
	err := store.InTx(ctx, db, func(tx *sql.Tx) error {
		cancel()
		_, err := tx.ExecContext(ctx, "INSERT INTO items VALUES ('x', 1)")
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("InTx with its context cancelled midway = %v, want context.Canceled", err)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM items").Scan(&n)
	if n != 0 {
		t.Errorf("rows after a cancelled transaction = %d, want 0", n)
	}
}

func TestAfterCommitRunsOnlyOnCommit(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	var ran []string
	hook := func(name string) func(*sql.DB) {
		return func(got *sql.DB) {
			if got != db {
				t.Errorf("hook %s got another database", name)
			}
			ran = append(ran, name)
		}
	}
	err := store.InTx(context.Background(), db, func(tx *sql.Tx) error {
		store.AfterCommit(tx, hook("first"))
		store.AfterCommit(tx, hook("second"))
		_, err := tx.Exec("INSERT INTO items VALUES ('a', 1)")
		return err
	})
	if err != nil {
		t.Fatalf("InTx = %v", err)
	}
	boom := errors.New("boom")
	err = store.InTx(context.Background(), db, func(tx *sql.Tx) error {
		store.AfterCommit(tx, hook("rolled back"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if want := []string{"first", "second"}; !slices.Equal(ran, want) {
		t.Errorf("hooks ran = %v, want %v", ran, want)
	}
}
