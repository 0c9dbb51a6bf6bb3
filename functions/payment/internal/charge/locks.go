package charge

import (
	"context"
	"sync"
)

// orderLocks serializes the calls that change one order's payment within
// this instance, so that concurrent retries of one Authorize make one
// processor call, and a Refund or Capture waits for an Authorize in flight.
// Entries exist only while someone holds or waits for them.
type orderLocks struct {
	mu sync.Mutex
	m  map[string]*orderLock
}

type orderLock struct {
	held chan struct{} // a one-slot semaphore: waiting honours ctx
	refs int           // holders and waiters; guarded by orderLocks.mu
}

// lock waits until the order is free (or ctx ends) and returns the function
// that frees it.
func (l *orderLocks) lock(ctx context.Context, orderID string) (unlock func(), err error) {
	l.mu.Lock()
	e := l.m[orderID]
	if e == nil {
		e = &orderLock{held: make(chan struct{}, 1)}
		l.m[orderID] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.held <- struct{}{}:
		return func() {
			<-e.held
			l.drop(orderID, e)
		}, nil
	case <-ctx.Done():
		l.drop(orderID, e)
		return nil, ctx.Err()
	}
}

func (l *orderLocks) drop(orderID string, e *orderLock) {
	l.mu.Lock()
	if e.refs--; e.refs == 0 {
		delete(l.m, orderID)
	}
	l.mu.Unlock()
}
