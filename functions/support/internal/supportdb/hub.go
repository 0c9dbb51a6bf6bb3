package supportdb

import (
	"context"
	"sync"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
)

// catchUpPage is how many stored messages a subscriber reads at a time
// when catching up: a join's whole default history in one read, and little
// memory held per subscriber.
const catchUpPage = 100

// Hub is chat.Hub within this process: Publish hands a message to every
// subscriber of its room connected to this instance, which is all of them
// because this instance owns the room's SQLite file. (supportfs.Hub uses it
// as its local fan-out, publishing what its Firestore listeners see.)
//
// Each subscriber has a bounded buffer of messages published and not yet
// taken by Next; Publish never waits for a subscriber, and drops one whose
// buffer is full with chat.ErrSlowConsumer. A subscriber first reads the
// stored messages after its starting seq from the store, then takes
// published ones, skipping the seqs it already has and going back to the
// store when it sees a gap (two posts committed in one order and published
// in the other), so it yields every seq once, in order.
type Hub struct {
	store  chat.Store
	buffer int

	mu    sync.Mutex
	rooms map[string]map[*subscription]struct{}
}

var _ chat.Hub = (*Hub)(nil)

// NewHub returns a hub reading missed messages from s (this package's
// Store or any other chat.Store), with buffer messages of room per
// subscriber.
func NewHub(s chat.Store, buffer int) *Hub {
	return &Hub{store: s, buffer: max(1, buffer), rooms: make(map[string]map[*subscription]struct{})}
}

// Publish implements chat.Hub. It never blocks on a subscriber.
func (h *Hub) Publish(_ context.Context, m chat.Message) error {
	p := &m // one copy shared by every subscriber; nobody changes it
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.rooms[m.Room] {
		select {
		case sub.live <- p:
		default:
			h.removeLocked(sub)
			sub.end(chat.ErrSlowConsumer)
		}
	}
	return nil
}

// Subscribe implements chat.Hub. The subscriber is registered before it
// reads the store, so a message stored after that read is published to it:
// nothing falls between the stored messages and the live ones.
func (h *Hub) Subscribe(_ context.Context, room string, after int64) (chat.Subscription, error) {
	sub := &subscription{
		hub: h, room: room, next: after + 1, catchingUp: true,
		live: make(chan *chat.Message, h.buffer),
		done: make(chan struct{}),
	}
	h.mu.Lock()
	subs := h.rooms[room]
	if subs == nil {
		subs = make(map[*subscription]struct{})
		h.rooms[room] = subs
	}
	subs[sub] = struct{}{}
	h.mu.Unlock()
	return sub, nil
}

// Subscribers returns how many subscriptions of room are open, for tests
// and metrics.
func (h *Hub) Subscribers(room string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms[room])
}

func (h *Hub) remove(sub *subscription) {
	h.mu.Lock()
	h.removeLocked(sub)
	h.mu.Unlock()
}

func (h *Hub) removeLocked(sub *subscription) {
	subs := h.rooms[sub.room]
	delete(subs, sub)
	if len(subs) == 0 {
		delete(h.rooms, sub.room)
	}
}

// subscription is one subscriber. live and done are shared with the hub;
// the other fields belong to the goroutine calling Next.
type subscription struct {
	hub  *Hub
	room string
	live chan *chat.Message

	once sync.Once
	done chan struct{}
	err  error // set before done is closed

	next       int64 // the seq to yield next
	catchingUp bool  // reading the store, not live
	pending    []chat.Message
}

// Next implements chat.Subscription.
func (s *subscription) Next(ctx context.Context) (chat.Message, error) {
	for {
		select {
		case <-s.done:
			return chat.Message{}, s.failure()
		default:
		}
		if len(s.pending) > 0 {
			m := s.pending[0]
			s.pending = s.pending[1:]
			s.next = m.Seq + 1
			return m, nil
		}
		if s.catchingUp {
			page, err := s.hub.store.After(ctx, s.room, s.next-1, catchUpPage)
			if err != nil {
				return chat.Message{}, err
			}
			// A short page is the end of what is stored; whatever is stored
			// later is published to this subscriber.
			s.catchingUp = len(page) == catchUpPage
			s.pending = page
			continue
		}
		select {
		case <-s.done:
			return chat.Message{}, s.failure()
		case <-ctx.Done():
			return chat.Message{}, ctx.Err()
		case m := <-s.live:
			switch {
			case m.Seq < s.next:
				// Already yielded (read from the store, or published twice).
			case m.Seq == s.next:
				s.next++
				return *m, nil
			default:
				// A gap: the messages before m are stored (seqs are
				// assigned in commit order) but were published after m, or
				// their publication was lost. Read them from the store.
				s.catchingUp = true
			}
		}
	}
}

// Done implements chat.Subscription.
func (s *subscription) Done() <-chan struct{} { return s.done }

// Err implements chat.Subscription.
func (s *subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// failure is the error Next returns once done is closed.
func (s *subscription) failure() error {
	if s.err != nil {
		return s.err
	}
	return context.Canceled
}

// Close implements chat.Subscription.
func (s *subscription) Close() {
	s.hub.remove(s)
	s.end(nil)
}

func (s *subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}
