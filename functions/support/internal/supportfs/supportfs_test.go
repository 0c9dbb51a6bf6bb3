package supportfs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/functions/support/internal/chat/storetest"
	"github.com/shopfn/shopfn/functions/support/internal/supportdb"
	"github.com/shopfn/shopfn/functions/support/internal/supportfs"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestStore runs the chat.Store conformance suite on the Firestore
// emulator, each case in a project of its own.
func TestStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	storetest.Run(t, func(t *testing.T) chat.Store {
		s := supportfs.Open(context.Background(), testenv.ProjectID(t), "shopfn-support")
		t.Cleanup(func() { s.Close() })
		<-s.Done()
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// openStore opens the store of project on the emulator, as one instance
// does.
func openStore(t *testing.T, project string) *supportfs.Store {
	t.Helper()
	s := supportfs.Open(context.Background(), project, "shopfn-support")
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// newHub returns a listener hub over s with buffer messages per subscriber,
// closed when the test ends.
func newHub(t *testing.T, s *supportfs.Store, buffer int) *supportfs.Hub {
	t.Helper()
	h := supportfs.NewHub(context.Background(), slog.New(slog.DiscardHandler), s, supportdb.NewHub(s, buffer))
	t.Cleanup(h.Close)
	return h
}

func post(t *testing.T, s chat.Store, room, text string) chat.Message {
	t.Helper()
	m, _, err := s.Append(context.Background(), chat.Message{ID: text, Room: room, AuthorID: "usr_1", Text: text, Created: time.Now().UTC()})
	if err != nil {
		t.Fatalf("Append(%s) = %v", text, err)
	}
	return m
}

func next(t *testing.T, sub chat.Subscription, want int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := sub.Next(ctx)
	if err != nil || m.Seq != want {
		t.Fatalf("Next() = seq %d, %v; want seq %d", m.Seq, err, want)
	}
}

// TestHub has two instances (two stores and hubs on one database): what is
// appended through either reaches the subscribers of both, in order, once;
// a subscriber resumes after a seq; a room's listener stops with its last
// subscriber.
func TestHub(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	a, b := openStore(t, project), openStore(t, project)
	ha, hb := newHub(t, a, 16), newHub(t, b, 16)
	const room = "ticket:hub"
	ctx := context.Background()
	post(t, a, room, "m1")

	onA, err := ha.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	onB, err := hb.Subscribe(ctx, room, 1) // resumes after seq 1
	if err != nil {
		t.Fatal(err)
	}
	next(t, onA, 1)
	post(t, b, room, "m2")
	post(t, a, room, "m3")
	for _, sub := range []chat.Subscription{onA, onB} {
		next(t, sub, 2)
		next(t, sub, 3)
	}
	// A second subscriber on A shares the room's listener.
	again, err := ha.Subscribe(ctx, room, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := ha.Listeners(); n != 1 {
		t.Errorf("Listeners() = %d with two subscribers of one room, want 1", n)
	}
	post(t, b, room, "m4")
	next(t, again, 4)
	next(t, onA, 4)
	again.Close()
	if n := ha.Listeners(); n != 1 {
		t.Errorf("Listeners() = %d with one subscriber left, want 1", n)
	}
	onA.Close()
	onB.Close()
	if n, m := ha.Listeners(), hb.Listeners(); n != 0 || m != 0 {
		t.Errorf("Listeners() = %d, %d after the last subscribers left, want 0", n, m)
	}
}

// TestHubSlowConsumer drops a subscriber that does not read, fed by a
// listener, while another one goes on.
func TestHubSlowConsumer(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	s := openStore(t, testenv.ProjectID(t))
	h := newHub(t, s, 2)
	const room = "ticket:slow"
	ctx := context.Background()
	slow, err := h.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	reader, err := h.Subscribe(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for i := range 6 {
		post(t, s, room, fmt.Sprint("m", i+1))
		next(t, reader, int64(i+1))
	}
	select {
	case <-slow.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the slow subscriber was not dropped")
	}
	if err := slow.Err(); !errors.Is(err, chat.ErrSlowConsumer) {
		t.Errorf("Err() = %v, want ErrSlowConsumer", err)
	}
}
