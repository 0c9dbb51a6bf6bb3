package supportfs

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/functions/support/internal/supportdb"
	"github.com/shopfn/shopfn/shared/testenv"
)

// A listener whose stream goes silent (it delivers nothing while the room
// gets messages) is replaced, and the new one delivers what was missed.
func TestHubListensAgainWhenTheListenerGoesSilent(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	s := Open(context.Background(), testenv.ProjectID(t), "shopfn-support")
	t.Cleanup(func() { s.Close() })
	<-s.Done()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	h := NewHub(context.Background(), slog.New(slog.DiscardHandler), s, supportdb.NewHub(s, 16))
	t.Cleanup(h.Close)
	h.stallCheck = 100 * time.Millisecond
	var silenced atomic.Int32
	real := h.follow
	h.follow = func(ctx context.Context, room string, rref *firestore.DocumentRef, after *int64, delivered *atomic.Int64) (int, error) {
		if silenced.Add(1) == 1 { // the first listener hears nothing
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return real(ctx, room, rref, after, delivered)
	}

	const room = "ticket:silent"
	sub, err := h.Subscribe(context.Background(), room, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, _, err := s.Append(context.Background(), chat.Message{ID: "m1", Room: room, AuthorID: "usr_1", Text: "hello", Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	// The store is ahead of the silent listener: it is replaced within two
	// checks.
	for deadline := time.Now().Add(10 * time.Second); silenced.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the silent listener was not replaced in 10 s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if m, err := sub.Next(ctx); err != nil || m.Seq != 1 {
		t.Fatalf("Next() = seq %d, %v; want seq 1", m.Seq, err)
	}
	// The new listener delivers live messages.
	if _, _, err := s.Append(context.Background(), chat.Message{ID: "m2", Room: room, AuthorID: "usr_1", Text: "again", Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Next(ctx); err != nil || m.Seq != 2 {
		t.Fatalf("Next() = seq %d, %v; want seq 2", m.Seq, err)
	}
}
