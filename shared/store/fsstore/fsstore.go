// Package fsstore holds what every Firestore adapter of a service store
// shares: opening the database in the background, naming documents after
// domain ids and running read-modify-write transactions. It is a package
// of its own so that only deployables with a store link the Firestore
// client.
package fsstore

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/shared/store"
)

// Open connects to a named database of project; with FIRESTORE_EMULATOR_HOST
// set, the client library connects to the emulator. Close it when done.
func Open(ctx context.Context, project, database string) (*firestore.Client, error) {
	if project == "" {
		return nil, errors.New("firestore needs a project: set GOOGLE_CLOUD_PROJECT")
	}
	c, err := firestore.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		return nil, fmt.Errorf("firestore database %s: %w", database, err)
	}
	return c, nil
}

// Conn is a Firestore client being opened in the background (see
// store.Opening): a deployable starts serving at once and its store's
// first call waits for the client. Adapters embed it, which gives them
// Done, Err and Close.
type Conn struct {
	open *store.Opening[*firestore.Client]
}

// OpenInBackground starts connecting to the named database of project (as
// Open does) and returns at once.
func OpenInBackground(ctx context.Context, project, database string) *Conn {
	return &Conn{open: store.InBackground(func() (*firestore.Client, error) {
		return Open(ctx, project, database)
	})}
}

// Done is closed when the client is ready or failed (see Err).
func (c *Conn) Done() <-chan struct{} { return c.open.Done() }

// Err returns why the client failed to open, once Done is closed.
func (c *Conn) Err() error { return c.open.Err() }

// Client waits for the client (or for ctx to end) and returns it, or why
// it failed to open.
func (c *Conn) Client(ctx context.Context) (*firestore.Client, error) {
	return c.open.Get(ctx)
}

// Close closes the client (waiting for it to open first). A client that
// failed to open left nothing open: Close then returns nil.
func (c *Conn) Close() error {
	fc, err := c.open.Wait()
	if err != nil {
		return nil // nothing was left open
	}
	return fc.Close()
}

// IsNotFound reports whether err is Firestore's "no such document".
func IsNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// IsAlreadyExists reports whether err is a Create of an existing document.
func IsAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }
