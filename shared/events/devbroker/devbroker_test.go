package devbroker_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopfn/shopfn/infra"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/devbroker"
	"github.com/shopfn/shopfn/shared/events/eventstest"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testStack is the real stack with backoffs short enough for tests.
func testStack(t *testing.T) *infra.Stack {
	t.Helper()
	s, err := infra.Parse(infra.YAML())
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Subscriptions {
		s.Subscriptions[i].Ordered = true // TestOneOrdersEventsArriveInOrder
		s.Subscriptions[i].MinBackoff.Duration = 10 * time.Millisecond
		s.Subscriptions[i].MaxBackoff.Duration = 40 * time.Millisecond
	}
	return s
}

// recorder is a consumer: it records every delivery and answers as told.
type recorder struct {
	mu         sync.Mutex
	deliveries map[string]int // event id → deliveries
	order      []string       // event ids in handling order
	answer     func(m events.Message, attempt int) error
	onCtx      func(context.Context) // sees each handler's context, when set
	done       chan string           // event ids, once handled for good
}

func newRecorder(answer func(events.Message, int) error) *recorder {
	return &recorder{deliveries: map[string]int{}, answer: answer, done: make(chan string, 10000)}
}

func (r *recorder) handle(ctx context.Context, m events.Message) error {
	if r.onCtx != nil {
		r.onCtx(ctx)
	}
	r.mu.Lock()
	r.deliveries[m.ID]++
	n := r.deliveries[m.ID]
	r.order = append(r.order, m.ID)
	r.mu.Unlock()
	err := r.answer(m, n)
	if err == nil || events.IsPermanent(err) {
		r.done <- m.ID
	}
	return err
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deliveries[id]
}

type system struct {
	db      *sql.DB
	client  *pubsub.Client
	project string
	relay   *relay.Relay
}

// start runs the embedded broker, a relay over a fresh outbox and the push
// bridge delivering order-confirmed events to rec through the functions
// framework.
func start(t *testing.T, rec *recorder, runRelay bool) *system {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := devbroker.Embedded()
	url, project := eventstest.Serve(t, events.Function("invoicing", quiet, rec.handle))
	client, err := relay.DialAddr(ctx, project, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	stack := testStack(t)
	if err := devbroker.Provision(ctx, client, project, stack, nil); err != nil {
		t.Fatalf("Provision = %v", err)
	}
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "o.db"), outbox.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	s := &system{db: db, client: client, project: project, relay: relay.New(outbox.SQLite(db), client, quiet, time.Hour)}
	b := &devbroker.Bridge{Client: client, Project: project, Stack: stack, URL: func(string) string { return url }, HTTP: http.DefaultClient, Log: quiet}
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	if runRelay {
		wg.Go(func() { s.relay.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		client.Close()
		srv.Close()
		db.Close()
	})
	return s
}

// confirm records an order.confirmed event in its own transaction.
func (s *system) confirm(t *testing.T, orderID string) string {
	t.Helper()
	var id string
	err := store.InTx(context.Background(), s.db, func(tx *sql.Tx) error {
		var err error
		id, err = outbox.Append(context.Background(), tx, outbox.Event{
			ID: orderID + "-confirmed", Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order",
			Subject: orderID, OrderingKey: orderID, Data: &eventsv1.OrderConfirmed{OrderId: orderID},
		})
		return err
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return id
}

func waitDone(t *testing.T, rec *recorder, n int) []string {
	t.Helper()
	var ids []string
	timeout := time.After(20 * time.Second)
	for len(ids) < n {
		select {
		case id := <-rec.done:
			ids = append(ids, id)
		case <-timeout:
			t.Fatalf("handled %d of %d events", len(ids), n)
		}
	}
	return ids
}

func TestEventsReachTheFunctionOnce(t *testing.T) {
	rec := newRecorder(func(events.Message, int) error { return nil })
	s := start(t, rec, true)
	const n = 50
	for i := range n {
		s.confirm(t, fmt.Sprintf("ord_%d", i))
	}
	waitDone(t, rec, n)
	time.Sleep(100 * time.Millisecond) // a duplicate would arrive now
	for i := range n {
		id := fmt.Sprintf("ord_%d-confirmed", i)
		if got := rec.count(id); got != 1 {
			t.Errorf("deliveries of %s = %d, want 1", id, got)
		}
	}
	rows, err := outbox.Unsent(context.Background(), s.db, 100)
	if err != nil || len(rows) != 0 {
		t.Errorf("Unsent() = %d rows, %v; want none", len(rows), err)
	}
}

func TestTransientFailureIsRedelivered(t *testing.T) {
	rec := newRecorder(func(_ events.Message, attempt int) error {
		if attempt < 3 {
			return errors.New("catalog unavailable")
		}
		return nil
	})
	s := start(t, rec, true)
	id := s.confirm(t, "ord_retry")
	waitDone(t, rec, 1)
	if got := rec.count(id); got != 3 {
		t.Errorf("deliveries = %d, want 3 (two failures, then success)", got)
	}
}

func TestPermanentFailureIsAcknowledged(t *testing.T) {
	rec := newRecorder(func(m events.Message, _ int) error {
		if m.Subject == "ord_poison" {
			return events.Permanent(errors.New("undecodable"))
		}
		return nil
	})
	s := start(t, rec, true)
	poison := s.confirm(t, "ord_poison")
	good := s.confirm(t, "ord_good")
	waitDone(t, rec, 2)
	time.Sleep(200 * time.Millisecond) // a redelivery would arrive now
	if got := rec.count(poison); got != 1 {
		t.Errorf("deliveries of the poison message = %d, want 1", got)
	}
	if got := rec.count(good); got != 1 {
		t.Errorf("deliveries of the good message = %d, want 1", got)
	}
}

func TestFailingMessageIsDeadLettered(t *testing.T) {
	rec := newRecorder(func(m events.Message, _ int) error {
		if m.Subject == "ord_bad" {
			return errors.New("always failing")
		}
		return nil
	})
	s := start(t, rec, true)
	bad := s.confirm(t, "ord_bad")
	good := s.confirm(t, "ord_other")
	waitDone(t, rec, 1) // the other order flows past the failing one
	if got := rec.count(good); got != 1 {
		t.Errorf("deliveries of the good message = %d, want 1", got)
	}
	// The dead-letter subscription receives it after 5 attempts.
	dl := devbroker.SubscriptionPath(s.project, "invoicing-dead-letter")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		//lint:ignore SA1019 see Bridge
		resp, err := s.client.SubscriptionAdminClient.Pull(context.Background(), &pubsubpb.PullRequest{Subscription: dl, MaxMessages: 10, ReturnImmediately: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ReceivedMessages) > 0 {
			if got := resp.ReceivedMessages[0].Message.Attributes[events.AttrID]; got != bad {
				t.Errorf("dead letter = %s, want %s", got, bad)
			}
			if got := rec.count(bad); got != 5 {
				t.Errorf("deliveries before dead-lettering = %d, want 5 (maxDeliveryAttempts)", got)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing in the dead-letter topic after %d deliveries", rec.count(bad))
}

func TestSweepPublishesWhatACrashLeft(t *testing.T) {
	rec := newRecorder(func(events.Message, int) error { return nil })
	s := start(t, rec, false) // committed, but no relay ran: the crash
	id := s.confirm(t, "ord_crash")
	select {
	case <-rec.done:
		t.Fatal("delivered without a relay")
	case <-time.After(50 * time.Millisecond):
	}
	n, err := s.relay.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Sweep() = %d, %v; want 1, nil", n, err)
	}
	if n, err := s.relay.Sweep(context.Background()); err != nil || n != 0 {
		t.Errorf("second Sweep() = %d, %v; want 0, nil", n, err)
	}
	waitDone(t, rec, 1)
	time.Sleep(100 * time.Millisecond)
	if got := rec.count(id); got != 1 {
		t.Errorf("deliveries = %d, want 1", got)
	}
}

func TestOneOrdersEventsArriveInOrder(t *testing.T) {
	rec := newRecorder(func(events.Message, int) error { return nil })
	s := start(t, rec, true)
	var want []string
	for i := range 20 {
		err := store.InTx(context.Background(), s.db, func(tx *sql.Tx) error {
			id, err := outbox.Append(context.Background(), tx, outbox.Event{
				ID: fmt.Sprintf("step-%02d", i), Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order",
				Subject: "ord_seq", OrderingKey: "ord_seq", Data: &eventsv1.OrderConfirmed{OrderId: "ord_seq"},
			})
			want = append(want, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := waitDone(t, rec, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("handling order = %v, want %v", got, want)
		}
	}
}

func TestTraceTravelsWithTheEvent(t *testing.T) {
	traces := make(chan trace.TraceID, 1)
	rec := newRecorder(func(events.Message, int) error { return nil })
	rec.onCtx = func(ctx context.Context) { traces <- trace.SpanContextFromContext(ctx).TraceID() }
	s := start(t, rec, true)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	err := store.InTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := outbox.Append(ctx, tx, outbox.Event{Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order",
			Subject: "ord_traced", Data: &eventsv1.OrderConfirmed{OrderId: "ord_traced"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-traces:
		if got != tid {
			t.Errorf("trace id in the function = %s, want %s", got, tid)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("event not handled")
	}
}
