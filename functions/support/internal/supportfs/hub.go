package supportfs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
)

// Listener tuning.
const (
	// relistenAfter is how many messages one snapshot listener delivers
	// before it is replaced by a listener on the messages after the last
	// one: the client keeps every document of a listener's result set, so
	// this bounds a busy room's memory (a few hundred KiB at most).
	relistenAfter = 500
	// Waits before listening again after a listener failed: from a blink
	// (a stream reset) doubling up to a few seconds (Firestore unreachable),
	// so an outage costs little and a reset little latency.
	minListenRetry = 100 * time.Millisecond
	maxListenRetry = 5 * time.Second
	// stallCheck is how often a listener compares the room's last seq with
	// what it delivered. Two checks in a row behind with no progress mean
	// the listen stream went silent (seen with the emulator under load):
	// the listener listens again, and its first snapshot brings what it
	// missed. It costs one document read per room every stallCheck.
	stallCheck = 5 * time.Second
)

// Hub is chat.Hub across instances: a message is published by its commit
// to Firestore, whichever instance stored it.
//
// Each room with at least one participant connected to this instance has
// one Firestore snapshot listener on its messages with a seq above the
// room's last when the listener started, and every message the listener
// sees is handed to local, the in-process fan-out (supportdb.Hub), which
// keeps each participant's buffer, drops a slow one with
// chat.ErrSlowConsumer, and yields the stored messages first and then the
// live ones, each seq once and in order (a duplicate is skipped, a gap read
// from the store). The listener stops when the room's last local
// participant leaves.
//
// Publish does nothing: the listener of every instance, this one's
// included, sees the committed message.
type Hub struct {
	store *Store
	local chat.Hub
	log   *slog.Logger
	ctx   context.Context // ends every listener

	mu    sync.Mutex
	rooms map[string]*listener
	wg    sync.WaitGroup // the listeners' goroutines

	// stallCheck and follow are stallCheck and (*Hub).followRoom, except
	// in tests of the stall check.
	stallCheck time.Duration
	follow     func(ctx context.Context, room string, rref *firestore.DocumentRef, after *int64, delivered *atomic.Int64) (int, error)
}

var _ chat.Hub = (*Hub)(nil)

// listener is a room's snapshot listener and the count of local
// subscriptions it feeds.
type listener struct {
	refs   int
	ready  chan struct{} // closed once started (or failed: err)
	err    error
	cancel context.CancelFunc
}

// NewHub returns a hub delivering the messages stored in s to the
// subscribers of local. Listeners end with ctx; Close waits for them.
func NewHub(ctx context.Context, log *slog.Logger, s *Store, local chat.Hub) *Hub {
	h := &Hub{store: s, local: local, log: log, ctx: ctx, rooms: make(map[string]*listener), stallCheck: stallCheck}
	h.follow = h.followRoom
	return h
}

// Publish implements chat.Hub: the commit was the publication.
func (h *Hub) Publish(context.Context, chat.Message) error { return nil }

// Subscribe implements chat.Hub. The room's listener is started (it read
// the room's last seq, L, and listens to the messages after it) before the
// subscriber reads the store, which it does after this returns: whatever
// the subscriber does not read there has a seq above L and reaches it
// through the listener.
func (h *Hub) Subscribe(ctx context.Context, room string, after int64) (chat.Subscription, error) {
	l, err := h.acquire(ctx, room)
	if err != nil {
		return nil, err
	}
	sub, err := h.local.Subscribe(ctx, room, after)
	if err != nil {
		h.release(room, l)
		return nil, err
	}
	return &subscription{Subscription: sub, release: sync.OnceFunc(func() { h.release(room, l) })}, nil
}

// acquire counts one more local subscriber of room, starting its listener
// if it is the first, and waits until the listener has started.
func (h *Hub) acquire(ctx context.Context, room string) (*listener, error) {
	h.mu.Lock()
	l := h.rooms[room]
	first := l == nil
	if first {
		lctx, cancel := context.WithCancel(h.ctx)
		l = &listener{ready: make(chan struct{}), cancel: cancel}
		h.rooms[room] = l
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.listen(lctx, room, l)
		}()
	}
	l.refs++
	h.mu.Unlock()

	select {
	case <-l.ready:
	case <-ctx.Done():
		h.release(room, l)
		return nil, ctx.Err()
	}
	if l.err != nil {
		h.release(room, l)
		return nil, l.err
	}
	return l, nil
}

// release counts one local subscriber of room less, stopping its listener
// after the last.
func (h *Hub) release(room string, l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l.refs--
	if l.refs > 0 {
		return
	}
	l.cancel()
	if h.rooms[room] == l {
		delete(h.rooms, room)
	}
}

// Listeners returns how many rooms this instance listens to, for tests and
// metrics.
func (h *Hub) Listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// Close stops every listener and waits for them to end. The hub must not
// be used afterwards.
func (h *Hub) Close() {
	h.mu.Lock()
	for _, l := range h.rooms {
		l.cancel()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// listen reads the room's last seq, reports the listener started, then
// follows the room's later messages until ctx ends, listening again after
// a failure or relistenAfter messages.
func (h *Hub) listen(ctx context.Context, room string, l *listener) {
	after, err := h.store.LastSeq(ctx, room)
	var rref *firestore.DocumentRef
	if err == nil {
		var c *firestore.Client
		if c, err = h.store.Client(ctx); err == nil {
			rref, err = roomRef(c, room)
		}
	}
	if err != nil {
		l.err = fmt.Errorf("listen to %s: %w", room, err)
	}
	close(l.ready)
	if err != nil {
		return
	}
	wait := minListenRetry
	var delivered atomic.Int64 // after, for the stall check
	delivered.Store(after)
	for {
		fctx, stop := context.WithCancel(ctx)
		var stalled atomic.Bool
		go h.checkStall(fctx, room, &delivered, func() { stalled.Store(true); stop() })
		n, err := h.follow(fctx, room, rref, &after, &delivered)
		stop()
		if ctx.Err() != nil {
			return
		}
		if stalled.Load() {
			h.log.WarnContext(ctx, "chat listener went silent; listening again", "room", room, "after_seq", after)
			continue
		}
		if err == nil {
			wait = minListenRetry
			continue // relistenAfter reached
		}
		if n > 0 {
			wait = minListenRetry
		}
		h.log.WarnContext(ctx, "chat listener failed; listening again", "room", room, "after_seq", after, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxListenRetry)
	}
}

// checkStall calls stalled when, at two checks in a row, the room's stored
// messages go beyond what the listener delivered and it delivered nothing
// in between. It returns when ctx ends.
func (h *Hub) checkStall(ctx context.Context, room string, delivered *atomic.Int64, stalled func()) {
	t := time.NewTicker(h.stallCheck)
	defer t.Stop()
	behindAt := int64(-1) // what was delivered when the store was last seen ahead
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d := delivered.Load()
		last, err := h.store.LastSeq(ctx, room)
		switch {
		case err != nil || last <= d:
			behindAt = -1
		case behindAt == d:
			stalled()
			return
		default:
			behindAt = d
		}
	}
}

// followRoom listens to room's messages with seq > *after, hands each to the
// local hub in seq order and advances *after (and delivered). It returns
// how many it handed, with nil once relistenAfter were, or why the
// listener failed.
func (h *Hub) followRoom(ctx context.Context, room string, rref *firestore.DocumentRef, after *int64, delivered *atomic.Int64) (int, error) {
	it := rref.Collection(messagesColl).Where("seq", ">", *after).OrderBy("seq", firestore.Asc).Snapshots(ctx)
	defer it.Stop()
	n := 0
	for n < relistenAfter {
		snap, err := it.Next()
		if err != nil {
			return n, err
		}
		var batch []chat.Message
		for _, ch := range snap.Changes {
			if ch.Kind != firestore.DocumentAdded {
				continue // messages are never changed or deleted
			}
			var d messageDoc
			if err := ch.Doc.DataTo(&d); err != nil {
				// Skipped: the subscribers see the gap and read the store,
				// which reports the bad document to them.
				h.log.ErrorContext(ctx, "unreadable chat message", "room", room, "doc", ch.Doc.Ref.ID, "error", err)
				continue
			}
			batch = append(batch, d.message())
		}
		slices.SortFunc(batch, func(a, b chat.Message) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, m := range batch {
			if m.Seq <= *after {
				continue
			}
			if err := h.local.Publish(ctx, m); err != nil {
				return n, fmt.Errorf("publish message %d of %s: %w", m.Seq, room, err)
			}
			*after = m.Seq
			delivered.Store(m.Seq)
			n++
		}
	}
	return n, nil
}

// subscription is a local subscription that releases its room's listener
// when closed.
type subscription struct {
	chat.Subscription
	release func()
}

// Close implements chat.Subscription.
func (s *subscription) Close() {
	s.Subscription.Close()
	s.release()
}
