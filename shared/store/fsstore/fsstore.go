// Package fsstore holds what every Firestore adapter of a service store
// shares: opening the database and running read-modify-write
// transactions. It is a package of its own so that only deployables with
// a store link the Firestore client.
package fsstore

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// IsNotFound reports whether err is Firestore's "no such document".
func IsNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// IsAlreadyExists reports whether err is a Create of an existing document.
func IsAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }
