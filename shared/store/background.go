package store

import "context"

// Opening is a store being opened in the background. A deployable starts
// serving at once and its store waits on first use, so opening (about a
// millisecond on a cold process: open, migrate, prepare) overlaps with the
// first client's connection set-up instead of adding to the cold start.
type Opening[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// InBackground runs open in a goroutine and returns at once.
func InBackground[T any](open func() (T, error)) *Opening[T] {
	o := &Opening[T]{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		o.v, o.err = open()
	}()
	return o
}

// Get waits until opening has finished (or ctx ends) and returns its
// result.
func (o *Opening[T]) Get(ctx context.Context) (T, error) {
	select {
	case <-o.done:
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// Done is closed once opening has finished, well or not.
func (o *Opening[T]) Done() <-chan struct{} { return o.done }

// Err returns the error of a finished open (nil before it finishes).
func (o *Opening[T]) Err() error {
	select {
	case <-o.done:
		return o.err
	default:
		return nil
	}
}

// Wait waits for opening to finish and returns its result.
func (o *Opening[T]) Wait() (T, error) {
	<-o.done
	return o.v, o.err
}
