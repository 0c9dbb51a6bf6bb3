package store

import (
	"context"
	"database/sql"
	"io/fs"
)

// Opening is a SQLite database being opened and migrated in the background.
// A deployable starts serving at once and its store waits for the database
// on first use, so the open (about a millisecond on a cold process) overlaps
// with the first client's connection set-up instead of adding to the cold
// start.
type Opening struct {
	done chan struct{}
	db   *sql.DB
	err  error
}

// OpenSQLiteInBackground starts OpenSQLite in a goroutine.
func OpenSQLiteInBackground(ctx context.Context, path string, migrations fs.FS) *Opening {
	o := &Opening{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		o.db, o.err = OpenSQLite(ctx, path, migrations)
	}()
	return o
}

// DB waits until the database is open (or ctx ends) and returns it, or the
// error that kept it from opening.
func (o *Opening) DB(ctx context.Context) (*sql.DB, error) {
	select {
	case <-o.done:
		return o.db, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed once opening has finished, well or not.
func (o *Opening) Done() <-chan struct{} { return o.done }

// Err returns the error of a finished open (nil before it finishes).
func (o *Opening) Err() error {
	select {
	case <-o.done:
		return o.err
	default:
		return nil
	}
}

// Close waits for the open to finish and closes the database.
func (o *Opening) Close() error {
	<-o.done
	if o.db == nil {
		return nil
	}
	return o.db.Close()
}
