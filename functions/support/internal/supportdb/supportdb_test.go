package supportdb_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/functions/support/internal/chat/storetest"
	"github.com/shopfn/shopfn/functions/support/internal/supportdb"
)

func open(t *testing.T) *supportdb.Store {
	t.Helper()
	s := supportdb.Open(context.Background(), filepath.Join(t.TempDir(), "support.db"))
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

var msg = storetest.Msg

// testCtx bounds a test's waits, so a bug fails the test instead of
// hanging it. It is not a timing assertion.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestStore runs the chat.Store conformance suite on SQLite.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return open(t) })
}

// appendAndPublish stores and publishes n messages to room, as the service
// does.
func appendAndPublish(t *testing.T, s *supportdb.Store, h *supportdb.Hub, room string, n int) []chat.Message {
	t.Helper()
	out := make([]chat.Message, n)
	for i := range out {
		m, _, err := s.Append(context.Background(), msg(room, "usr_a", fmt.Sprint(i), ""))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out
}

// expectSeqs reads seqs from..to from sub.
func expectSeqs(t *testing.T, ctx context.Context, sub chat.Subscription, from, to int64) {
	t.Helper()
	for want := from; want <= to; want++ {
		m, err := sub.Next(ctx)
		if err != nil || m.Seq != want {
			t.Fatalf("Next = seq %d, %v; want seq %d", m.Seq, err, want)
		}
	}
}

// TestHubOrdersPublications publishes stored messages out of order and
// twice: the subscriber sees each seq once, in order.
func TestHubOrdersPublications(t *testing.T) {
	s := open(t)
	h := supportdb.NewHub(s, 100)
	ctx := testCtx(t)
	room := "ticket:t"
	sub, err := h.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// The subscriber has caught up with the store and waits for live
	// messages…
	appendAndPublish(t, s, h, room, 1)
	expectSeqs(t, ctx, sub, 1, 1)
	// …when seqs 2 to 6 are stored and their publications arrive out of
	// order and twice.
	stored := make(map[int64]chat.Message)
	for i := range 5 {
		m, _, err := s.Append(ctx, msg(room, "usr_a", fmt.Sprint(i), ""))
		if err != nil {
			t.Fatal(err)
		}
		stored[m.Seq] = m
	}
	for _, seq := range []int64{3, 2, 2, 6, 4, 5, 3} {
		h.Publish(ctx, stored[seq])
	}
	expectSeqs(t, ctx, sub, 2, 6)
	more := appendAndPublish(t, s, h, room, 1)
	h.Publish(ctx, stored[6]) // a late duplicate
	if m, err := sub.Next(ctx); err != nil || m.Seq != 7 || m.ID != more[0].ID {
		t.Fatalf("Next after the duplicates = %v, %v; want seq 7", m, err)
	}
}

// TestHubResumesFromASeq subscribes while another goroutine is posting,
// each subscriber starting after a different seq: each sees every later
// seq once, in order — the stored ones, then the live ones, with nothing
// lost at the handover.
func TestHubResumesFromASeq(t *testing.T) {
	s := open(t)
	const total, subscribers = 300, 12
	h := supportdb.NewHub(s, total) // room for everything: no one is slow here
	ctx := testCtx(t)
	room := "order:o1"
	posted := make(chan int64, total)
	go func() {
		defer close(posted)
		for range total {
			m, _, err := s.Append(ctx, msg(room, "usr_a", "x", ""))
			if err != nil {
				t.Error(err)
				return
			}
			h.Publish(ctx, m)
			posted <- m.Seq
		}
	}()
	var wg sync.WaitGroup
	for i := range subscribers {
		// Start the i-th subscriber once about i/subscribers of the
		// messages are posted, after a seq a little behind the last.
		var last int64
		for seq := range posted {
			last = seq
			if seq >= int64(i*total/subscribers) {
				break
			}
		}
		after := max(0, last-int64(i*3))
		sub, err := h.Subscribe(ctx, room, after)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			for want := after + 1; want <= total; want++ {
				m, err := sub.Next(ctx)
				if err != nil || m.Seq != want {
					t.Errorf("subscriber %d (after %d): Next = seq %d, %v; want %d", i, after, m.Seq, err, want)
					return
				}
			}
		})
	}
	for range posted {
	}
	wg.Wait()
	if n := h.Subscribers(room); n != 0 {
		t.Errorf("%d subscriptions left open after Close", n)
	}
}

// TestHubDropsSlowSubscriber never reads one subscriber: once its buffer is
// full it is dropped with ErrSlowConsumer, and the others go on.
func TestHubDropsSlowSubscriber(t *testing.T) {
	s := open(t)
	const buffer = 4
	h := supportdb.NewHub(s, buffer)
	ctx := testCtx(t)
	room := "ticket:t"
	slow, err := h.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for i := range buffer + 1 {
		appendAndPublish(t, s, h, room, 1)
		expectSeqs(t, ctx, fast, int64(i+1), int64(i+1))
	}
	select {
	case <-slow.Done():
	default:
		t.Fatalf("a subscriber %d messages behind with a buffer of %d is still subscribed", buffer+1, buffer)
	}
	if !errors.Is(slow.Err(), chat.ErrSlowConsumer) {
		t.Errorf("Err = %v, want ErrSlowConsumer", slow.Err())
	}
	if _, err := slow.Next(ctx); !errors.Is(err, chat.ErrSlowConsumer) {
		t.Errorf("Next after the drop = %v, want ErrSlowConsumer", err)
	}
	appendAndPublish(t, s, h, room, 1)
	expectSeqs(t, ctx, fast, buffer+2, buffer+2)
	if n := h.Subscribers(room); n != 1 {
		t.Errorf("Subscribers = %d, want 1", n)
	}
}
