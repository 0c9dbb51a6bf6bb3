package relay

import (
	"context"
	"log/slog"
	"sync"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	opsv1 "github.com/shopfn/shopfn/proto/shopfn/ops/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/outbox"
)

// Service runs a deployable's relay in the background and serves its
// OutboxService. Register it on the deployable's server, and Close it
// after the server stopped and before the database closes.
type Service struct {
	opsv1.UnimplementedOutboxServiceServer

	cancel context.CancelFunc
	ready  chan struct{} // closed once relay is set, or Pub/Sub is off or failed
	relay  *Relay        // nil when events are off or Pub/Sub failed
	done   sync.WaitGroup
}

// Start opens Pub/Sub as cfg says and runs the relay over the database db
// returns (it waits for the store to open) until ctx ends. Failures are
// logged, not fatal: events wait safely in the outbox, and the service
// keeps serving.
func Start(ctx context.Context, cfg Outbox, log *slog.Logger, db func(context.Context) (outbox.Store, error)) *Service {
	ctx, cancel := context.WithCancel(ctx)
	s := &Service{ready: make(chan struct{}), cancel: cancel}
	s.done.Go(func() {
		client, err := Dial(ctx, cfg)
		if err != nil || client == nil {
			if err != nil {
				log.ErrorContext(ctx, "events stay in the outbox: no Pub/Sub", "error", err.Error())
			}
			close(s.ready)
			return
		}
		defer client.Close()
		store, err := db(ctx)
		if err != nil {
			close(s.ready) // the server stops on the store's failure
			return
		}
		s.relay = New(store, client, log, cfg.OutboxSweep).Retain(cfg.OutboxRetention)
		close(s.ready)
		s.relay.Run(ctx)
	})
	return s
}

// Close stops the relay and returns once it has flushed what was in
// flight.
func (s *Service) Close() {
	s.cancel()
	s.done.Wait()
}

var errEventsOff = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE, "events are off or Pub/Sub is unreachable; events wait in the outbox")

var errPublish = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE, "publishing failed; the rest waits for the next sweep")

// Sweep implements opsv1.OutboxServiceServer.
func (s *Service) Sweep(ctx context.Context, _ *opsv1.SweepRequest) (*opsv1.SweepResponse, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.relay == nil {
		return nil, errEventsOff
	}
	n, err := s.relay.Sweep(ctx)
	if err != nil {
		return &opsv1.SweepResponse{Published: int64(n)}, errPublish.Wrap(err)
	}
	return &opsv1.SweepResponse{Published: int64(n)}, nil
}
