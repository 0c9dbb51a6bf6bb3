package fsstore

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxAttempts bounds the runs of one read-write transaction. The client's
// default (5) gives up too soon on a document a handful of requests update
// at once (a hot SKU under a burst of Reserves, an order that saga steps,
// cancels and Resume update together): Aborted then reaches the caller
// though a retry would succeed. Each attempt backs off exponentially, so
// 20 covers seconds of contention, and the caller's deadline bounds the
// retries anyway.
const MaxAttempts = 20

// RunTransaction runs fn in a read-write transaction of c, which runs fn
// again (up to MaxAttempts times in all) when it loses a conflict, and
// says why it failed in the caller's terms: a context that has already
// ended begins nothing and returns ctx.Err(); a transaction cut short by
// the end of ctx returns an error that is ctx.Err() (wrapping the client's
// gRPC status, which does not say so); a conflict that outlasts
// MaxAttempts says so and keeps the Aborted status. Other errors, fn's
// included, are returned as they are.
func RunTransaction(ctx context.Context, c *firestore.Client, fn func(context.Context, *firestore.Transaction) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := c.RunTransaction(ctx, fn, firestore.MaxAttempts(MaxAttempts))
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The client reports a transaction whose context ended as a gRPC
		// status; the context's error says why.
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if status.Code(err) == codes.Aborted {
		return fmt.Errorf("transaction kept conflicting after %d attempts: %w", MaxAttempts, err)
	}
	return err
}
