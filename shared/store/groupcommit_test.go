package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/store"
)

// holdWriter starts an InTx on db that keeps the writer busy until the
// returned function is first called, which waits for it to commit.
func holdWriter(t *testing.T, db *sql.DB) (release func()) {
	t.Helper()
	started, proceed, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- store.InTx(context.Background(), db, func(tx *sql.Tx) error {
			close(started)
			<-proceed
			_, err := tx.Exec("INSERT INTO items VALUES ('holder', 1)")
			return err
		})
	}()
	<-started
	return sync.OnceFunc(func() {
		close(proceed)
		if err := <-done; err != nil {
			t.Errorf("holding InTx = %v", err)
		}
	})
}

// waitQueued waits until n calls are queued on db's writer.
func waitQueued(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); store.Queued(db) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued after 10 s, want %d", store.Queued(db), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func rows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rs, err := db.Query("SELECT id FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var ids []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Calls queued behind a writer share one transaction; one that fails
// (its function's error, a constraint) loses only its own writes and
// hooks, and every caller gets its own outcome.
func TestGroupCommitSharesATransactionAndIsolatesFailures(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	release := holdWriter(t, db)

	boom := errors.New("boom")
	type call struct {
		id   string
		fail error // returned after the insert
		dup  bool  // inserts the holder's id: a constraint violation
	}
	calls := []call{{id: "a"}, {id: "b", fail: boom}, {id: "c"}, {id: "d", dup: true}, {id: "e"}}
	var (
		mu    sync.Mutex
		txs   = map[*sql.Tx]bool{}
		hooks []string
		wg    sync.WaitGroup
	)
	errs := make([]error, len(calls))
	for i, c := range calls {
		wg.Go(func() {
			errs[i] = store.InTx(context.Background(), db, func(tx *sql.Tx) error {
				mu.Lock()
				txs[tx] = true
				mu.Unlock()
				store.AfterCommit(tx, func(*sql.DB) { mu.Lock(); hooks = append(hooks, c.id); mu.Unlock() })
				id := c.id
				if c.dup {
					id = "holder"
				}
				if _, err := tx.Exec("INSERT INTO items VALUES (?, 1)", id); err != nil {
					return err
				}
				return c.fail
			})
		})
		waitQueued(t, db, i+1) // keep the calls in order
	}
	release()
	wg.Wait()

	for i, c := range calls {
		switch {
		case c.fail != nil:
			if !errors.Is(errs[i], c.fail) {
				t.Errorf("InTx(%s) = %v, want its own error", c.id, errs[i])
			}
		case c.dup:
			if !store.IsUniqueViolation(errs[i]) {
				t.Errorf("InTx(%s) = %v, want a unique violation", c.id, errs[i])
			}
		default:
			if errs[i] != nil {
				t.Errorf("InTx(%s) = %v", c.id, errs[i])
			}
		}
	}
	if len(txs) != 1 {
		t.Errorf("the queued calls ran in %d transactions, want 1", len(txs))
	}
	if want := []string{"a", "c", "e", "holder"}; !slices.Equal(rows(t, db), want) {
		t.Errorf("rows = %v, want %v", rows(t, db), want)
	}
	slices.Sort(hooks)
	if want := []string{"a", "c", "e"}; !slices.Equal(hooks, want) {
		t.Errorf("hooks ran for %v, want %v", hooks, want)
	}
}

// When SQLite ends the shared transaction under one call (here the call
// rolls it back itself, as an interrupted write makes SQLite do), that call
// fails and the others run again in a new transaction: each write lands
// exactly once.
func TestGroupCommitRerunsTheOthersWhenTheTransactionIsLost(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	release := holdWriter(t, db)

	var (
		mu   sync.Mutex
		runs = map[string]int{}
		wg   sync.WaitGroup
	)
	ids := []string{"a", "b", "killer", "c"}
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			errs[i] = store.InTx(context.Background(), db, func(tx *sql.Tx) error {
				mu.Lock()
				runs[id]++
				mu.Unlock()
				if _, err := tx.Exec("INSERT INTO items VALUES (?, 1)", id); err != nil {
					return err
				}
				if id == "killer" {
					if _, err := tx.Exec("ROLLBACK"); err != nil {
						return err
					}
					return errors.New("killed the transaction")
				}
				return nil
			})
		})
		waitQueued(t, db, i+1)
	}
	release()
	wg.Wait()

	for i, id := range ids {
		if (errs[i] != nil) != (id == "killer") {
			t.Errorf("InTx(%s) = %v", id, errs[i])
		}
	}
	if want := []string{"a", "b", "c", "holder"}; !slices.Equal(rows(t, db), want) {
		t.Errorf("rows = %v, want %v", rows(t, db), want)
	}
	if want := map[string]int{"a": 2, "b": 2, "killer": 1, "c": 1}; fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Errorf("runs = %v, want %v", runs, want)
	}
}

// A queued caller whose context ends leaves the queue at once, and its
// function never runs.
func TestGroupCommitWithdrawsACancelledCaller(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	release := holdWriter(t, db)
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- store.InTx(ctx, db, func(tx *sql.Tx) error { ran = true; return nil })
	}()
	waitQueued(t, db, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("InTx with its context cancelled in the queue = %v, want context.Canceled", err)
	}
	if store.Queued(db) != 0 {
		t.Errorf("%d calls still queued", store.Queued(db))
	}
	release()
	if ran {
		t.Error("the withdrawn call's function ran")
	}
}

// A function that panics panics again in its own caller, its writes are
// rolled back, the calls batched with it commit, and the database stays
// writable.
func TestGroupCommitCarriesAPanicToItsCaller(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "s.db"))
	inTx := func(id string, boom bool) (panicked any, err error) {
		defer func() { panicked = recover() }()
		return nil, store.InTx(context.Background(), db, func(tx *sql.Tx) error {
			if _, err := tx.Exec("INSERT INTO items VALUES (?, 1)", id); err != nil {
				return err
			}
			if boom {
				panic("boom in " + id)
			}
			return nil
		})
	}
	// Alone.
	if p, _ := inTx("alone", true); p == nil || !strings.Contains(fmt.Sprint(p), "boom in alone") {
		t.Errorf("InTx(panicking alone) panicked with %v, want the function's panic", p)
	}
	// Batched behind a writer, between two calls that commit.
	release := holdWriter(t, db)
	var wg sync.WaitGroup
	results := make([]any, 3)
	for i, id := range []string{"a", "bad", "c"} {
		wg.Go(func() {
			p, err := inTx(id, id == "bad")
			if p != nil {
				results[i] = p
			} else {
				results[i] = err
			}
		})
		waitQueued(t, db, i+1)
	}
	release()
	wg.Wait()
	if results[0] != nil || results[2] != nil {
		t.Errorf("the calls batched with a panic = %v, %v; want nil", results[0], results[2])
	}
	if !strings.Contains(fmt.Sprint(results[1]), "boom in bad") {
		t.Errorf("the panicking call's caller got %v, want its panic", results[1])
	}
	if p, err := inTx("after", false); err != nil || p != nil {
		t.Errorf("InTx after the panics = %v, %v", err, p)
	}
	if want := []string{"a", "after", "c", "holder"}; !slices.Equal(rows(t, db), want) {
		t.Errorf("rows = %v, want %v", rows(t, db), want)
	}
}
