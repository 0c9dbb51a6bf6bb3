// Package relay publishes the events that services record in their outbox
// (shared/outbox) to Pub/Sub: right after the recording transaction
// commits, and again on a periodic sweep for whatever a crash or an
// outage left behind. Delivery is at least once; consumers deduplicate by
// event id and make their side effects idempotent.
//
// Topics come from infra/stack.yaml: each event type has its topic. Events
// with an ordering key (an order's events carry the order id) are published
// with it, so Pub/Sub delivers one aggregate's events in order.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Outbox is the relay's share of a publishing deployable's configuration;
// embed it in the deployable's Config.
type Outbox struct {
	// Events is where outbox events go: "pubsub" (Google Cloud, or the
	// emulator when PUBSUB_EMULATOR_HOST is set), the host:port of a
	// plaintext Pub/Sub endpoint (the embedded broker of `shopfn dev`), or
	// "off" (they stay in the outbox). Empty, as in a Config literal, is
	// off.
	Events string `envconfig:"SHOPFN_EVENTS" default:"pubsub"`
	// PubSubProject is the Google Cloud project of the topics; empty means
	// the project in infra/stack.yaml (the one the emulators use).
	PubSubProject string `envconfig:"GOOGLE_CLOUD_PROJECT"`
	// OutboxSweep is how often unsent events are looked for without a
	// commit signal (after a crash, a publish failure, another instance's
	// commits). Zero turns the timer off; the sweep schedules of the stack
	// call Sweep instead, which is what scale-to-zero needs.
	OutboxSweep time.Duration `envconfig:"SHOPFN_OUTBOX_SWEEP" default:"10s"`
	// OutboxRetention is how long published events stay in the outbox
	// (for inspection and replays) before the relay deletes them; zero
	// keeps them.
	OutboxRetention time.Duration `envconfig:"SHOPFN_OUTBOX_RETENTION" default:"168h"`
}

// pruneEvery is how often the relay deletes events older than the
// retention: hourly keeps each prune small.
const pruneEvery = time.Hour

// batch is how many rows one pass reads and publishes before marking them
// sent: large enough to amortise the MarkSent transaction, small enough to
// keep a pass under a few milliseconds.
const batch = 500

// Relay publishes one database's outbox.
type Relay struct {
	db        outbox.Store
	client    *pubsub.Client
	stack     *infra.Stack
	log       *slog.Logger
	sweep     time.Duration
	retention time.Duration

	mu   sync.Mutex // one pass at a time, so a row is not published twice by us
	pubs map[string]*pubsub.Publisher

	published metric.Int64Counter
}

// Dial connects to the Pub/Sub that cfg names; nil, nil when events are
// off.
func Dial(ctx context.Context, cfg Outbox) (*pubsub.Client, error) {
	project := cfg.PubSubProject
	if project == "" {
		project = infra.MustLoad().Project
	}
	switch cfg.Events {
	case "", "off":
		return nil, nil
	case "pubsub":
		// The client library goes to PUBSUB_EMULATOR_HOST when it is set.
		c, err := pubsub.NewClient(ctx, project)
		if err != nil {
			return nil, fmt.Errorf("pubsub client: %w", err)
		}
		return c, nil
	default:
		return DialAddr(ctx, project, cfg.Events)
	}
}

// DialAddr connects to a Pub/Sub endpoint without TLS or credentials (the
// embedded broker of `shopfn dev` and tests).
func DialAddr(ctx context.Context, project, addr string) (*pubsub.Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c, err := pubsub.NewClient(ctx, project, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	return c, nil
}

// New returns a relay for an outbox. It publishes nothing until Run or
// Sweep. Run sweeps every sweep (0: only on commits); see Retain.
func New(db outbox.Store, client *pubsub.Client, log *slog.Logger, sweep time.Duration) *Relay {
	published, _ := otel.Meter("github.com/shopfn/shopfn/shared/events/relay").Int64Counter("shopfn.events.published",
		metric.WithDescription("Outbox events published to Pub/Sub."))
	return &Relay{
		db: db, client: client, stack: infra.MustLoad(), log: log, sweep: sweep,
		pubs: map[string]*pubsub.Publisher{}, published: published,
	}
}

// Retain makes Run delete published events older than d, hourly; zero
// (the default) keeps them.
func (r *Relay) Retain(d time.Duration) *Relay {
	r.retention = d
	return r
}

// Run publishes after every commit that recorded events and on every
// sweep, until ctx ends; then it flushes what is in flight and stops the
// publishers.
func (r *Relay) Run(ctx context.Context) error {
	defer r.stop()
	var lastPrune time.Time
	var tick <-chan time.Time
	if r.sweep > 0 {
		t := time.NewTicker(r.sweep)
		defer t.Stop()
		tick = t.C
	}
	committed := r.db.Committed()
	r.pass(ctx) // what a previous run left behind
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-committed:
		case <-tick:
		}
		r.pass(ctx)
		if r.retention > 0 && time.Since(lastPrune) > pruneEvery {
			lastPrune = time.Now()
			if n, err := r.db.Prune(ctx, lastPrune.Add(-r.retention)); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "outbox relay: prune failed", "error", err.Error())
			} else if n > 0 {
				r.log.InfoContext(ctx, "outbox relay: pruned published events", "deleted", n)
			}
		}
	}
}

func (r *Relay) pass(ctx context.Context) {
	if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
		r.log.WarnContext(ctx, "outbox relay: events left for the next sweep", "error", err.Error())
	}
}

// Sweep publishes every unsent event now and reports how many it
// published. Events whose publish failed stay unsent and are retried on
// the next call; an event of a type with no topic is reported and skipped.
func (r *Relay) Sweep(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for {
		rows, err := r.db.Unsent(ctx, batch)
		if err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		sent, err := r.publish(ctx, rows)
		if len(sent) > 0 {
			if merr := r.db.MarkSent(context.WithoutCancel(ctx), sent...); merr != nil {
				return total, errors.Join(err, merr)
			}
			total += len(sent)
			r.published.Add(ctx, int64(len(sent)))
		}
		if err != nil {
			return total, err
		}
		if len(rows) < batch {
			return total, nil
		}
	}
}

// publish sends rows and returns the ids Pub/Sub accepted.
func (r *Relay) publish(ctx context.Context, rows []outbox.Row) ([]string, error) {
	type pending struct {
		id, key string
		pub     *pubsub.Publisher
		res     *pubsub.PublishResult
	}
	var (
		inflight []pending
		errs     []error
	)
	for _, row := range rows {
		p, err := r.publisher(row.Type)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msg := &pubsub.Message{Data: row.Data, OrderingKey: row.OrderingKey, Attributes: attributes(row)}
		inflight = append(inflight, pending{row.ID, row.OrderingKey, p, p.Publish(ctx, msg)})
	}
	sent := make([]string, 0, len(inflight))
	for _, f := range inflight {
		if _, err := f.res.Get(ctx); err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", f.id, err))
			if f.key != "" {
				// Publishing paused for the key; the next sweep resends in order.
				f.pub.ResumePublish(f.key)
			}
			continue
		}
		sent = append(sent, f.id)
	}
	return sent, errors.Join(errs...)
}

// publisher returns the publisher of the event type's topic.
func (r *Relay) publisher(eventType string) (*pubsub.Publisher, error) {
	t, ok := r.stack.TopicFor(eventType)
	if !ok {
		return nil, fmt.Errorf("event type %q has no topic in infra/stack.yaml", eventType)
	}
	if p, ok := r.pubs[t.Name]; ok {
		return p, nil
	}
	p := r.client.Publisher(t.Name)
	p.EnableMessageOrdering = true
	// The default 10 ms batching delay would be most of an event's
	// latency; a pass publishes its rows together anyway.
	p.PublishSettings.DelayThreshold = time.Millisecond
	r.pubs[t.Name] = p
	return p, nil
}

// stopGrace bounds how long stopping waits for publishes in flight: within
// a container's shutdown grace, and an event not confirmed in time stays
// unsent in the outbox for the next sweep, so nothing is lost.
const stopGrace = 3 * time.Second

func (r *Relay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, p := range r.pubs {
			p.Stop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopGrace):
		r.log.Warn("outbox relay: stopped without confirmation of every publish; the next sweep resends them")
	}
}

// attributes carries the CloudEvent context of a row (see package events).
func attributes(row outbox.Row) map[string]string {
	a := map[string]string{
		events.AttrID:          row.ID,
		events.AttrType:        row.Type,
		events.AttrSource:      row.Source,
		events.AttrSpecVersion: "1.0",
		events.AttrTime:        row.Time.UTC().Format(time.RFC3339Nano),
		events.AttrContentType: outbox.DataContentType,
	}
	if row.Subject != "" {
		a[events.AttrSubject] = row.Subject
	}
	if row.Traceparent != "" {
		a[events.AttrTraceparent] = row.Traceparent
	}
	return a
}
