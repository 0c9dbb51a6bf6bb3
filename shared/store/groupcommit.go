package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
)

// Group commit. SQLite has one writer at a time, and most of a small write
// transaction's cost is its frame: BEGIN IMMEDIATE takes the WAL locks and
// reads the index, COMMIT appends every changed page to the WAL. So InTx
// queues its function, and whoever writes next runs everything queued in
// one transaction, each function inside its own savepoint: a function that
// fails rolls back to its savepoint alone, the others commit together, and
// every caller returns once the transaction holding its writes has
// committed. A lone writer runs as a plain transaction, as before.

// maxBatch bounds how many functions share a transaction, so that one
// transaction (and the latency of its first caller) stays short.
const maxBatch = 64

// writer queues the InTx calls of one database opened by OpenSQLite.
type writer struct {
	mu    sync.Mutex
	queue []*job
	// busy says a caller is running a batch, or has been named to run the
	// next one. While it is set, new callers queue.
	busy bool
}

// job is one InTx call.
type job struct {
	fn   func(*sql.Tx) error
	done chan error    // its outcome, when another caller ran it
	lead chan struct{} // closed when this caller is to run the next batch
}

// writers holds the writer of each database opened by OpenSQLite. Without
// it, concurrent writers would wait in SQLite's busy handler, which polls
// with sleeps of up to 100 ms; queueing in Go hands the database over the
// moment it is free, and lets the writes share a commit.
var writers sync.Map // *sql.DB → *writer

// do runs fn in a transaction of w's database, alone or batched with the
// calls queued meanwhile.
func (w *writer) do(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	j := &job{fn: fn, done: make(chan error, 1), lead: make(chan struct{})}
	w.mu.Lock()
	if !w.busy {
		w.busy = true
		w.mu.Unlock()
		return w.run(db, j)
	}
	w.queue = append(w.queue, j)
	w.mu.Unlock()
	cancelled := ctx.Done()
	for {
		select {
		case err := <-j.done:
			return err
		case <-j.lead:
			return w.run(db, j)
		case <-cancelled:
			if w.withdraw(j) {
				return ctx.Err()
			}
			// Too late: the job is in a batch, or this caller was named to
			// run the next one (the others wait for it). Wait for that.
			cancelled = nil
		}
	}
}

// withdraw takes j out of the queue, unless a batch took it first.
func (w *writer) withdraw(j *job) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.queue, j)
	if i < 0 {
		return false
	}
	w.queue = slices.Delete(w.queue, i, i+1)
	return true
}

// run runs first and up to maxBatch-1 queued jobs in one transaction,
// hands their outcomes to their callers, names the next caller to run a
// batch (if any is queued) and returns first's outcome.
func (w *writer) run(db *sql.DB, first *job) error {
	w.mu.Lock()
	n := min(len(w.queue), maxBatch-1)
	batch := append([]*job{first}, w.queue[:n]...)
	w.queue = slices.Delete(w.queue, 0, n)
	w.mu.Unlock()

	errs := runBatch(db, batch)
	for i, j := range batch[1:] {
		j.done <- errs[i+1]
	}

	w.mu.Lock()
	if len(w.queue) > 0 {
		next := w.queue[0]
		w.queue = slices.Delete(w.queue, 0, 1)
		close(next.lead)
	} else {
		w.busy = false
	}
	w.mu.Unlock()
	return errs[0]
}

// errTxGone means SQLite ended the transaction under a function (it does
// so on some errors, such as an interrupted write).
var errTxGone = errors.New("transaction rolled back by SQLite")

// runBatch runs the jobs in one transaction and returns their outcomes, in
// order. If SQLite rolls the whole transaction back under a job, that job
// gets the error and the others run again in a new transaction: functions
// must be safe to run more than once, as with Firestore's transactions.
func runBatch(db *sql.DB, batch []*job) []error {
	errs := make([]error, len(batch))
	for {
		failed := func(err error) []error {
			for i := range batch {
				if errs[i] == nil {
					errs[i] = err
				}
			}
			return errs
		}
		todo := make([]int, 0, len(batch))
		for i := range batch {
			if errs[i] == nil {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			return errs
		}
		// The transaction outlives any one caller's context: callers pass
		// theirs to their own statements.
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			return failed(fmt.Errorf("begin: %w", err))
		}
		txDB.Store(tx, db)
		hooks := new([]func(*sql.DB))
		afterCommit.Store(tx, hooks)
		cleanup := func() {
			tx.Rollback() // after a commit, a no-op
			txDB.Delete(tx)
			afterCommit.Delete(tx)
		}
		gone := false
		if len(todo) == 1 {
			i := todo[0]
			if errs[i] = call(batch[i].fn, tx); errs[i] != nil {
				cleanup()
				return errs
			}
		} else {
			for _, i := range todo {
				mark := len(*hooks)
				errs[i] = runSavepoint(tx, batch[i].fn)
				if errors.Is(errs[i], errTxGone) {
					// The jobs before this one are lost with the
					// transaction; this one keeps its error.
					gone = true
					break
				}
				if errs[i] != nil {
					*hooks = (*hooks)[:mark] // hooks of a rolled-back job never run
				}
			}
		}
		if gone {
			cleanup()
			continue // errs is nil for exactly the jobs to run again
		}
		if err := tx.Commit(); err != nil {
			cleanup()
			return failed(fmt.Errorf("commit: %w", err))
		}
		cleanup()
		for _, f := range *hooks {
			f(db)
		}
		return errs
	}
}

// runSavepoint runs fn inside a savepoint of tx, rolling back to it when fn
// fails. It returns fn's error, or one wrapping errTxGone when the
// transaction itself ended under fn.
func runSavepoint(tx *sql.Tx, fn func(*sql.Tx) error) error {
	if _, err := tx.Exec("SAVEPOINT batch_job"); err != nil {
		return fmt.Errorf("%w: savepoint: %v", errTxGone, err)
	}
	ferr := call(fn, tx)
	if ferr != nil {
		if _, err := tx.Exec("ROLLBACK TO batch_job"); err != nil {
			return fmt.Errorf("%w (%v) after: %w", errTxGone, err, ferr)
		}
	}
	if _, err := tx.Exec("RELEASE batch_job"); err != nil {
		if ferr == nil {
			return fmt.Errorf("%w: release: %v", errTxGone, err)
		}
		return fmt.Errorf("%w (%v) after: %w", errTxGone, err, ferr)
	}
	return ferr
}

// panicked is a panic of a function run in a batch, carried to its own
// caller, which panics again with it (see call and rethrow): the writer
// stays usable, and the panic surfaces where the function came from (in a
// gRPC handler, the server's recovery turns it into Internal).
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string {
	return fmt.Sprintf("panic in a transaction function: %v\n\n%s", p.value, p.stack)
}

// call runs fn, turning a panic into a *panicked error.
func call(fn func(*sql.Tx) error, tx *sql.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{value: v, stack: debug.Stack()}
		}
	}()
	return fn(tx)
}

// rethrow panics again if err carries a panic of the caller's function.
func rethrow(err error) error {
	var p *panicked
	if errors.As(err, &p) {
		panic(p)
	}
	return err
}
