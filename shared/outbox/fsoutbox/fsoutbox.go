// Package fsoutbox is the transactional outbox on Firestore: a service
// whose store is Firestore appends its events in the same transaction as
// the change (Append), and the relay reads them through Store, which
// implements outbox.Store. A snapshot listener on the pending events is
// the commit signal, so a relay hears of commits made by any instance.
//
// Documents live in the collection "outbox" of the service's database, one
// per event, named by the event id (a second Append of the same id fails,
// as the SQLite outbox's unique id does). Unsent events carry pending=true
// and pending_since, the commit's server time, by which Unsent reads them
// in commit order; published ones lose pending_since and get
// pending=false and sent_time, which Prune uses. Every query uses a
// single-field index, which Firestore creates by itself.
package fsoutbox

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

// Collection holds the outbox documents.
const Collection = "outbox"

// doc is an outbox document.
type doc struct {
	Type        string    `firestore:"type"`
	Source      string    `firestore:"source"`
	Subject     string    `firestore:"subject"`
	OrderingKey string    `firestore:"ordering_key"`
	Time        time.Time `firestore:"time"`
	Data        []byte    `firestore:"data"`
	Traceparent string    `firestore:"traceparent"`
	Pending     bool      `firestore:"pending"`
	Created     time.Time `firestore:"created,serverTimestamp"`
	// PendingSince exists only while the event is unsent: ordering by it
	// lists exactly the unsent events, oldest first.
	PendingSince time.Time `firestore:"pending_since,serverTimestamp"`
	SentTime     time.Time `firestore:"sent_time,omitempty"`
}

// Append records e in tx and returns its id; the trace context of ctx is
// recorded with it. It fails if an event with the same id exists.
func Append(ctx context.Context, c *firestore.Client, tx *firestore.Transaction, e outbox.Event) (string, error) {
	if e.Type == "" || e.Source == "" || e.Data == nil {
		return "", fmt.Errorf("outbox: event needs a type, a source and data")
	}
	data, err := protojson.Marshal(e.Data)
	if err != nil {
		return "", fmt.Errorf("outbox: encode %s: %w", e.Type, err)
	}
	if e.ID == "" {
		e.ID = store.NewID("evt")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	err = tx.Create(c.Collection(Collection).Doc(e.ID), doc{
		Type: e.Type, Source: e.Source, Subject: e.Subject, OrderingKey: e.OrderingKey,
		Time: e.Time.UTC(), Data: data, Traceparent: carrier.Get("traceparent"), Pending: true,
	})
	if err != nil {
		return "", fmt.Errorf("outbox: insert %s: %w", e.Type, err)
	}
	return e.ID, nil
}

// Store is a Firestore database's outbox as the relay reads it.
type Store struct {
	c      *firestore.Client
	signal chan struct{}
	once   sync.Once
	ctx    context.Context
}

var _ outbox.Store = (*Store)(nil)

// New returns the outbox of the database c opens. Its commit listener runs
// until ctx ends.
func New(ctx context.Context, c *firestore.Client) *Store {
	return &Store{c: c, signal: make(chan struct{}, 1), ctx: ctx}
}

func (s *Store) coll() *firestore.CollectionRef { return s.c.Collection(Collection) }

// Unsent implements outbox.Store: pending events, oldest first.
func (s *Store) Unsent(ctx context.Context, limit int) ([]outbox.Row, error) {
	snaps, err := s.coll().OrderBy("pending_since", firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	rows := make([]outbox.Row, 0, len(snaps))
	for _, snap := range snaps {
		var d doc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("outbox: read %s: %w", snap.Ref.ID, err)
		}
		rows = append(rows, outbox.Row{
			ID: snap.Ref.ID, Type: d.Type, Source: d.Source, Subject: d.Subject, OrderingKey: d.OrderingKey,
			Time: d.Time, Data: d.Data, Traceparent: d.Traceparent,
		})
	}
	return rows, nil
}

// MarkSent implements outbox.Store.
func (s *Store) MarkSent(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	bw := s.c.BulkWriter(ctx)
	now := time.Now().UTC()
	jobs := make([]*firestore.BulkWriterJob, 0, len(ids))
	for _, id := range ids {
		j, err := bw.Update(s.coll().Doc(id), []firestore.Update{{Path: "pending", Value: false}, {Path: "pending_since", Value: firestore.Delete}, {Path: "sent_time", Value: now}})
		if err != nil {
			bw.End()
			return fmt.Errorf("outbox: mark %s sent: %w", id, err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for i, j := range jobs {
		if _, err := j.Results(); err != nil {
			return fmt.Errorf("outbox: mark %s sent: %w", ids[i], err)
		}
	}
	return nil
}

// pruneBatch bounds one Prune query.
const pruneBatch = 500

// Prune implements outbox.Store.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		snaps, err := s.coll().Where("sent_time", "<", cutoff.UTC()).Limit(pruneBatch).Documents(ctx).GetAll()
		if err != nil {
			return total, fmt.Errorf("outbox: prune: %w", err)
		}
		if len(snaps) == 0 {
			return total, nil
		}
		bw := s.c.BulkWriter(ctx)
		for _, snap := range snaps {
			if _, err := bw.Delete(snap.Ref); err != nil {
				bw.End()
				return total, fmt.Errorf("outbox: prune: %w", err)
			}
		}
		bw.End()
		total += len(snaps)
	}
}

// listenRetry is how long the commit listener waits after its stream
// fails before listening again; meanwhile the relay's sweep covers.
const listenRetry = time.Second

// Committed implements outbox.Store: it signals whenever the set of pending
// events changes to a non-empty one, whichever instance committed them.
func (s *Store) Committed() <-chan struct{} {
	s.once.Do(func() { go s.listen() })
	return s.signal
}

func (s *Store) listen() {
	for s.ctx.Err() == nil {
		it := s.coll().Where("pending", "==", true).Snapshots(s.ctx)
		for {
			snap, err := it.Next()
			if err != nil {
				break
			}
			if snap.Size > 0 {
				select {
				case s.signal <- struct{}{}:
				default:
				}
			}
		}
		it.Stop()
		select {
		case <-s.ctx.Done():
		case <-time.After(listenRetry):
		}
	}
}
