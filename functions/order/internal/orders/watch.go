package orders

import (
	"context"
	"sync"
	"time"

	"github.com/shopfn/shopfn/shared/auth"
)

// watchPoll is how often a watcher re-reads the order, for changes made by
// another instance (this instance's own changes wake it at once). Orders
// move in milliseconds to seconds; a quarter second keeps a watcher current
// at four reads a second.
const watchPoll = 250 * time.Millisecond

// Watch sends the order caller may see now, then every new version, and
// returns after a terminal state or when ctx ends.
func (s *Service) Watch(ctx context.Context, caller auth.Principal, id string, send func(Order) error) error {
	changed, stop := s.notify.subscribe(id)
	defer stop()
	o, err := s.Get(ctx, caller, id)
	if err != nil {
		return err
	}
	if err := send(o); err != nil {
		return err
	}
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for !o.State.Terminal() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
		n, err := s.store.Get(ctx, id)
		if err != nil {
			return err
		}
		if n.Version == o.Version {
			continue
		}
		o = n
		if err := send(o); err != nil {
			return err
		}
	}
	return nil
}

// notifier wakes this instance's watchers of an order when it changes.
type notifier struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier { return &notifier{subs: make(map[string]map[chan struct{}]struct{})} }

func (n *notifier) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs[id] == nil {
		n.subs[id] = make(map[chan struct{}]struct{})
	}
	n.subs[id][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs[id], ch)
		if len(n.subs[id]) == 0 {
			delete(n.subs, id)
		}
		n.mu.Unlock()
	}
}

func (n *notifier) publish(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}
