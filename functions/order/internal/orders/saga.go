package orders

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/auth"
)

// errLeased means another runner drives the saga now.
var errLeased = errors.New("saga leased by another runner")

// drive runs the saga of o, as stored, whose lease the caller holds, until
// it is terminal, the context ends, or a step fails in a way only a later
// Resume can fix (a dependency down while compensating). It returns the
// order as it last stored it.
func (s *Service) drive(ctx context.Context, o Order) (Order, error) {
	id := o.ID
	for !o.State.Terminal() {
		next, err := s.step(ctx, o)
		if err != nil {
			if errors.Is(err, errLeased) {
				return next, nil
			}
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "saga step failed; Resume will retry", "order", id, "state", string(o.State), "error", err.Error())
			}
			s.release(ctx, id)
			return next, nil
		}
		o = next
	}
	return o, nil
}

// releaseTimeout bounds giving a lease back after an interrupted step.
const releaseTimeout = 2 * time.Second

// release gives up this runner's lease on an interrupted saga, so that
// Resume may continue it at once rather than when the lease runs out. It is
// best effort: if it fails, the lease simply expires.
func (s *Service) release(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	_, err := s.store.Update(ctx, id, func(o *Order) error {
		if o.LeaseOwner != s.owner {
			return ErrUnchanged
		}
		o.LeaseOwner, o.LeaseUntil = "", time.Time{}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not release a saga lease", "order", id, "error", err.Error())
	}
}

// claim takes the saga's lease unless another runner holds it.
func (s *Service) claim(ctx context.Context, id string) (Order, error) {
	now := s.now()
	return s.store.Update(ctx, id, func(o *Order) error {
		if o.State.Terminal() {
			return ErrUnchanged
		}
		if o.LeaseOwner != s.owner && o.LeaseUntil.After(now) {
			return errLeased
		}
		o.LeaseOwner, o.LeaseUntil = s.owner, now.Add(s.opts.Lease)
		return nil
	})
}

// step performs the saga's next step for o and stores the outcome.
func (s *Service) step(ctx context.Context, o Order) (Order, error) {
	if o.CancelRequested && o.State != Cancelling {
		return s.advance(ctx, o, func(n *Order) {
			n.State, n.CancelReason, n.CancelMessage = Cancelling, errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "cancelled on request"
		})
	}
	stepCtx, cancel := context.WithTimeout(ctx, s.opts.StepTimeout)
	defer cancel()
	// When the caller's deadline is the step's, a callee running out of
	// time (it may say so before our own timer fires) interrupts the saga;
	// it is not a failure of the step.
	callerBound := false
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opts.StepTimeout {
		callerBound = true
	}
	outcome := func(err error, done func(*Order)) (Order, error) {
		return s.outcome(ctx, o, err, callerBound, done)
	}
	switch o.State {
	case Pending:
		err := s.stock.Reserve(stepCtx, o.ID, stockLines(o))
		return outcome(err, func(n *Order) { n.State = Reserved })
	case Reserved:
		err := s.payments.Authorize(stepCtx, o.ID, o.Total, o.PaymentToken)
		return outcome(err, func(n *Order) { n.State, n.PaymentToken = Authorized, "" })
	case Authorized:
		// Commit and capture are independent: run them together, store
		// once. If the saga is interrupted after one of them, Resume runs
		// both again (each is idempotent).
		var commitErr, captureErr error
		var wg sync.WaitGroup
		wg.Go(func() { commitErr = s.stock.Commit(stepCtx, o.ID) })
		wg.Go(func() { captureErr = s.payments.Capture(stepCtx, o.ID, o.Total) })
		wg.Wait()
		if err := errors.Join(commitErr, captureErr); err != nil {
			// Compensation releases (or restocks) and voids (or refunds)
			// whichever of the two happened.
			return outcome(firstStepError(commitErr, captureErr), nil)
		}
		return outcome(nil, func(n *Order) { n.Committed, n.Captured, n.State = true, true, Confirmed })
	case Cancelling:
		// Both compensations are safe to repeat and to call for what never
		// happened, so a resumed cancellation simply runs both again.
		if err := s.stock.Release(stepCtx, o.ID); err != nil {
			return o, fmt.Errorf("release stock: %w", err)
		}
		if err := s.payments.Refund(stepCtx, o.ID); err != nil {
			return o, fmt.Errorf("refund payment: %w", err)
		}
		return s.advance(ctx, o, func(n *Order) { n.State = Cancelled })
	}
	return o, fmt.Errorf("order %s in unknown state %q", o.ID, o.State)
}

// firstStepError prefers a refusal (it names why the order cannot go on)
// to an outage.
func firstStepError(errs ...error) error {
	var first error
	for _, err := range errs {
		var se *StepError
		if errors.As(err, &se) && !se.Transient {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// outcome stores the result of a forward step: done applied on success, a
// move to Cancelling when the dependency refused or stayed unavailable
// after its retries, and nothing when ctx ended or its deadline ran out in
// the callee (the saga is interrupted, not failed: Resume continues it).
func (s *Service) outcome(ctx context.Context, o Order, err error, callerBound bool, done func(*Order)) (Order, error) {
	if err == nil {
		return s.advance(ctx, o, done)
	}
	if ctx.Err() != nil {
		return o, ctx.Err()
	}
	var se *StepError
	if !errors.As(err, &se) {
		return o, err
	}
	if se.Deadline && callerBound {
		return o, context.DeadlineExceeded
	}
	s.log.InfoContext(ctx, "saga step failed; compensating", "order", o.ID, "state", string(o.State), "reason", se.Reason.String(), "transient", se.Transient, "error", se.Err.Error())
	return s.advance(ctx, o, func(n *Order) {
		n.State, n.CancelReason, n.CancelMessage = Cancelling, se.Reason, cancelMessage(se)
	})
}

func cancelMessage(se *StepError) string {
	if se.Transient {
		return "a service the order needs stayed unavailable"
	}
	switch se.Reason {
	case errorsv1.ErrorReason_PAYMENT_DECLINED:
		return "the payment was declined"
	case errorsv1.ErrorReason_INSUFFICIENT_STOCK:
		return "not enough stock"
	case errorsv1.ErrorReason_RESERVATION_EXPIRED:
		return "the stock reservation expired"
	}
	return "a step of the order failed"
}

// advance stores the change apply makes to o, provided this runner still
// holds the lease and nobody moved the order meanwhile, and renews the
// lease.
func (s *Service) advance(ctx context.Context, o Order, apply func(*Order)) (Order, error) {
	now := s.now()
	n, err := s.store.Update(ctx, o.ID, func(cur *Order) error {
		// Another runner took over, or the saga moved without us: stop. (A
		// cancel request does not count: it only sets a flag, handled below.)
		if cur.LeaseOwner != s.owner || cur.State != o.State || cur.Committed != o.Committed {
			return errLeased
		}
		apply(cur)
		if cur.CancelRequested && cur.State != Cancelling && !cur.State.Terminal() {
			// A cancel request came while the step ran: compensate next.
			cur.State, cur.CancelReason, cur.CancelMessage = Cancelling, errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "cancelled on request"
		}
		cur.LeaseUntil = now.Add(s.opts.Lease)
		cur.Updated = now.UTC()
		return nil
	})
	if err != nil {
		return o, err
	}
	s.notify.publish(o.ID)
	if s.opts.AfterStep != nil {
		s.opts.AfterStep(ctx, n)
	}
	return n, nil
}

func stockLines(o Order) []StockLine {
	lines := make([]StockLine, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = StockLine{SKU: l.SKU, Quantity: l.Quantity}
	}
	return lines
}

// Cancel asks for order id to be cancelled and, unless a saga step is
// running on it right now, compensates at once. Cancelling a cancelled
// order returns it unchanged.
func (s *Service) Cancel(ctx context.Context, caller auth.Principal, id string) (Order, error) {
	if _, err := s.Get(ctx, caller, id); err != nil {
		return Order{}, err
	}
	now := s.now()
	leased := false
	o, err := s.store.Update(ctx, id, func(o *Order) error {
		leased = false // fn may run more than once
		if o.State == Cancelled || (o.CancelRequested && o.State != Confirmed) {
			return ErrUnchanged
		}
		o.CancelRequested = true
		o.Updated = now.UTC()
		if o.LeaseOwner == s.owner || !o.LeaseUntil.After(now) {
			leased = true
			o.LeaseOwner, o.LeaseUntil = s.owner, now.Add(s.opts.Lease)
			if o.State == Confirmed {
				// Confirmed is terminal for the saga; a cancellation undoes it.
				o.State, o.CancelReason, o.CancelMessage = Cancelling, errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "cancelled on request"
			}
		}
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	s.notify.publish(id)
	if !leased {
		return o, nil
	}
	return s.drive(ctx, o)
}

// ResumeResult counts what Resume did.
type ResumeResult struct {
	Resumed, Confirmed, Cancelled, Pending int
}

// Resume continues up to limit sagas that stopped midway: non-terminal,
// untouched for minIdle and not leased by a running step.
func (s *Service) Resume(ctx context.Context, minIdle time.Duration, limit int) (ResumeResult, error) {
	ids, err := s.store.Unfinished(ctx, s.now().Add(-minIdle), limit)
	if err != nil {
		return ResumeResult{}, err
	}
	var r ResumeResult
	for _, id := range ids {
		o, err := s.claim(ctx, id)
		if err == nil {
			o, err = s.drive(ctx, o)
		}
		if errors.Is(err, errLeased) {
			continue
		}
		if err != nil {
			return r, err
		}
		r.Resumed++
		switch o.State {
		case Confirmed:
			r.Confirmed++
		case Cancelled:
			r.Cancelled++
		default:
			r.Pending++
		}
	}
	return r, nil
}

// DefaultLease returns how long a runner owns a saga for steps of
// stepTimeout: twice the step (a step and the writes around it, with room
// for a slow disk) plus a second, so a live runner never loses its lease
// and a dead one's saga is taken over soon.
func DefaultLease(stepTimeout time.Duration) time.Duration { return 2*stepTimeout + time.Second }
