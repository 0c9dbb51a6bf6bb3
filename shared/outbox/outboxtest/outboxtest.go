// Package outboxtest is the conformance suite every outbox.Store passes:
// the SQLite outbox and the Firestore one run the same tests.
package outboxtest

import (
	"context"
	"testing"
	"time"

	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Harness is one outbox under test: its Store, and how to append an event
// in a transaction of its own.
type Harness struct {
	Store  outbox.Store
	Append func(ctx context.Context, e outbox.Event) (string, error)
}

// signalWait bounds the wait for a commit signal; the Firestore one comes
// from a snapshot listener.
const signalWait = 10 * time.Second

// Run runs the suite against the harness that open returns (a fresh, empty
// outbox each time).
func Run(t *testing.T, open func(t *testing.T) Harness) {
	t.Run("AppendUnsentMarkSentPrune", func(t *testing.T) {
		ctx := context.Background()
		h := open(t)
		committed := h.Store.Committed()
		var ids []string
		for i, key := range []string{"ord_1", "ord_2", "ord_1"} {
			id, err := h.Append(ctx, outbox.Event{
				// Ids sort against commit order: the order must come from the commits.
				ID:   "evt_" + string(rune('z'-i)),
				Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order",
				Subject: key, OrderingKey: key, Data: &eventsv1.OrderConfirmed{OrderId: key},
			})
			if err != nil {
				t.Fatalf("Append #%d = %v", i+1, err)
			}
			ids = append(ids, id)
		}
		select {
		case <-committed:
		case <-time.After(signalWait):
			t.Fatal("no Committed signal after appending")
		}
		if _, err := h.Append(ctx, outbox.Event{ID: ids[0], Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order",
			Data: &eventsv1.OrderConfirmed{OrderId: "again"}}); err == nil {
			t.Error("Append of an existing id succeeded, want an error (deduplication)")
		}
		rows, err := h.Store.Unsent(ctx, 10)
		if err != nil {
			t.Fatalf("Unsent = %v", err)
		}
		if len(rows) != 3 {
			t.Fatalf("Unsent = %d rows, want 3", len(rows))
		}
		for i, r := range rows {
			if r.ID != ids[i] {
				t.Errorf("Unsent[%d] = %s, want %s (commit order)", i, r.ID, ids[i])
			}
			var got eventsv1.OrderConfirmed
			if err := r.Decode(&got); err != nil || got.GetOrderId() != r.Subject || r.OrderingKey != r.Subject || r.Type != outbox.TypeOrderConfirmed {
				t.Errorf("Unsent[%d] = %+v (%v), want its event back", i, r, err)
			}
		}
		if rows, _ := h.Store.Unsent(ctx, 2); len(rows) != 2 {
			t.Errorf("Unsent(limit 2) = %d rows", len(rows))
		}
		if err := h.Store.MarkSent(ctx, ids[0], ids[1]); err != nil {
			t.Fatalf("MarkSent = %v", err)
		}
		if err := h.Store.MarkSent(ctx, ids[0]); err != nil {
			t.Errorf("MarkSent again = %v, want nil (idempotent)", err)
		}
		rows, err = h.Store.Unsent(ctx, 10)
		if err != nil || len(rows) != 1 || rows[0].ID != ids[2] {
			t.Fatalf("Unsent after MarkSent = %+v, %v; want only %s", rows, err, ids[2])
		}
		if n, err := h.Store.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Errorf("Prune(an hour ago) = %d, %v; want 0", n, err)
		}
		if n, err := h.Store.Prune(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
			t.Errorf("Prune(now) = %d, %v; want 2", n, err)
		}
		if rows, _ := h.Store.Unsent(ctx, 10); len(rows) != 1 {
			t.Errorf("Unsent after Prune = %d rows, want the 1 unsent", len(rows))
		}
	})
	t.Run("RejectsIncompleteEvents", func(t *testing.T) {
		h := open(t)
		if _, err := h.Append(context.Background(), outbox.Event{Source: "//shopfn/order", Data: &eventsv1.OrderConfirmed{}}); err == nil {
			t.Error("Append without a type succeeded")
		}
		if rows, _ := h.Store.Unsent(context.Background(), 10); len(rows) != 0 {
			t.Errorf("Unsent after a refused Append = %d rows, want 0", len(rows))
		}
	})
}
