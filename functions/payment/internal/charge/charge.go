// Package charge is the payment service's domain: one payment per order,
// the card processor it talks to, and the rules for authorizing, capturing
// and refunding.
package charge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/store"
)

// State is where a payment is in its life.
type State string

// The states. A payment starts AUTHORIZED or DECLINED; AUTHORIZED moves to
// CAPTURED or VOIDED, CAPTURED to REFUNDED. DECLINED, VOIDED and REFUNDED
// are final.
const (
	StateAuthorized State = "authorized"
	StateCaptured   State = "captured"
	StateRefunded   State = "refunded"
	StateVoided     State = "voided"
	StateDeclined   State = "declined"
)

// Money is an amount in integer minor units of one ISO 4217 currency.
type Money struct {
	Currency string
	Minor    int64
}

// Payment is the money movement for one order. All its amounts are in the
// currency of Amount. No card data is kept beyond the token and the display
// hints the processor returned.
type Payment struct {
	ID      string
	OrderID string
	State   State
	// Token is the payment method token Authorize was given.
	Token string
	// Amount is what Authorize asked for.
	Amount Money
	// Captured and Refunded are minor units taken and given back.
	Captured int64
	Refunded int64
	// CardBrand and CardLast4 are display hints from the processor.
	CardBrand   string
	CardLast4   string
	DeclineCode string // set when State is StateDeclined
	Created     time.Time
	Updated     time.Time
}

// Authorized is the amount held: Amount, or nothing when declined.
func (p Payment) Authorized() int64 {
	if p.State == StateDeclined {
		return 0
	}
	return p.Amount.Minor
}

// The domain's errors.
var (
	ErrNotFound         = apperr.New(apperr.NotFound, errorsv1.ErrorReason_PAYMENT_NOT_FOUND, "no payment for this order")
	ErrDeclined         = apperr.New(apperr.Precondition, errorsv1.ErrorReason_PAYMENT_DECLINED, "the processor declined the payment")
	ErrMismatch         = apperr.New(apperr.Conflict, errorsv1.ErrorReason_PAYMENT_MISMATCH, "the order was authorized before with another amount or payment token")
	ErrCaptureExceeds   = apperr.New(apperr.Precondition, errorsv1.ErrorReason_CAPTURE_EXCEEDS_AUTHORIZATION, "capture exceeds the authorized amount")
	ErrStateConflict    = apperr.New(apperr.Precondition, errorsv1.ErrorReason_PAYMENT_STATE_CONFLICT, "the payment's state does not allow this")
	ErrCurrencyMismatch = apperr.New(apperr.Precondition, errorsv1.ErrorReason_CURRENCY_MISMATCH, "the capture's currency differs from the authorization's")
	// ErrInvalidToken is what a Processor returns for a token it does not
	// know.
	ErrInvalidToken = apperr.Invalidf("payment_token", "unknown payment token")
	// ErrProcessorUnavailable is what a Processor returns when it cannot
	// answer now; a retry may succeed.
	ErrProcessorUnavailable = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_PROCESSOR_UNAVAILABLE, "the card processor is unavailable; retry")

	errAmountNotPositive = apperr.Invalidf("amount.amount_minor", "must be greater than 0")
)

// ErrExists is what Store.Create returns when the order already has a
// payment. The service resolves it; it never reaches a client.
var ErrExists = errors.New("the order already has a payment")

// Store keeps payments, one per order id. Implementations translate their
// driver's errors into ErrNotFound and ErrExists.
type Store interface {
	// Get returns the order's payment; ErrNotFound if there is none.
	Get(ctx context.Context, orderID string) (Payment, error)
	// Create stores a new payment; ErrExists if the order has one.
	Create(ctx context.Context, p Payment) error
	// Update changes the order's payment with fn inside one transaction
	// and returns it as stored; nothing is written when fn fails, and fn's
	// error is returned. ErrNotFound if there is none. Only the state, the
	// captured and refunded amounts and the update time can change. fn may
	// run more than once (a transaction that lost a race is retried), so it
	// must have no side effects.
	Update(ctx context.Context, orderID string, fn func(*Payment) error) (Payment, error)
}

// Authorization is a processor's answer to an authorization request.
type Authorization struct {
	// Approved is true when the amount is held; otherwise DeclineCode says
	// why not (e.g. "insufficient_funds").
	Approved    bool
	DeclineCode string
	// CardBrand ("visa") and CardLast4 ("4242") are display hints.
	CardBrand string
	CardLast4 string
}

// Processor is the card processor: cardsim's simulation, or an adapter to a
// real one. The order id is the idempotency key of every call, so a call
// repeated after a lost answer moves no money twice.
//
// Authorize answers a decline as an Authorization, not an error. Errors are
// ErrInvalidToken (unknown token), ErrProcessorUnavailable (transient), or
// the context's error when ctx ends first; after any of them the processor
// holds nothing for the order.
type Processor interface {
	// Authorize asks to hold amount on the payment method token.
	Authorize(ctx context.Context, orderID string, amount Money, token string) (Authorization, error)
	// Capture takes amount of the order's authorization and releases the
	// rest.
	Capture(ctx context.Context, orderID string, amount Money) error
	// Void cancels the order's uncaptured authorization.
	Void(ctx context.Context, orderID string) error
	// Refund gives amount of the order's captured money back.
	Refund(ctx context.Context, orderID string, amount Money) error
}

// recordTimeout bounds writing down what the processor already did, which
// runs even when the caller has gone (see record). Twice SQLite's busy
// timeout: only a stuck database runs it out.
const recordTimeout = 10 * time.Second

// Service implements the payment rules.
type Service struct {
	store Store
	proc  Processor
	locks orderLocks
	now   func() time.Time
}

// NewService returns the service over store, talking to proc.
func NewService(s Store, proc Processor) *Service {
	return &Service{store: s, proc: proc, locks: orderLocks{m: make(map[string]*orderLock)}, now: time.Now}
}

// Authorize holds amount on the payment method token for the order.
//
// It is idempotent per order id: while one call for an order runs, the
// others wait for it (one processor call however many retries arrive), and
// afterwards the same amount and token return the recorded payment (a
// decline returns ErrDeclined again) without asking the processor. Another
// amount or token is ErrMismatch.
//
// Nothing is recorded unless the processor answered: an unknown token, a
// processor outage or the end of ctx leave the store as it was, and a retry
// starts afresh. Once the processor has answered, the answer is recorded
// even if ctx ends meanwhile, so an approval is never lost.
func (s *Service) Authorize(ctx context.Context, orderID string, amount Money, token string) (Payment, error) {
	if amount.Minor <= 0 {
		return Payment{}, errAmountNotPositive
	}
	unlock, err := s.locks.lock(ctx, orderID)
	if err != nil {
		return Payment{}, err
	}
	defer unlock()

	p, err := s.store.Get(ctx, orderID)
	switch {
	case err == nil:
		return replay(p, amount, token)
	case !errors.Is(err, ErrNotFound):
		return Payment{}, fmt.Errorf("read payment: %w", err)
	}
	auth, err := s.proc.Authorize(ctx, orderID, amount, token)
	if err != nil {
		return Payment{}, err
	}
	now := s.stamp()
	p = Payment{
		ID:        store.NewID("pay"),
		OrderID:   orderID,
		State:     StateAuthorized,
		Token:     token,
		Amount:    amount,
		CardBrand: auth.CardBrand,
		CardLast4: auth.CardLast4,
		Created:   now,
		Updated:   now,
	}
	if !auth.Approved {
		p.State, p.DeclineCode = StateDeclined, auth.DeclineCode
	}
	rctx, cancel := record(ctx)
	defer cancel()
	if err := s.store.Create(rctx, p); errors.Is(err, ErrExists) {
		// Another writer recorded the order first (only possible with
		// several instances on one store): its payment is the answer.
		if p, err = s.store.Get(rctx, orderID); err != nil {
			return Payment{}, fmt.Errorf("read payment: %w", err)
		}
	} else if err != nil {
		return Payment{}, fmt.Errorf("record authorization: %w", err)
	}
	return replay(p, amount, token)
}

// replay is the answer to an Authorize of the order whose payment is p.
func replay(p Payment, amount Money, token string) (Payment, error) {
	if p.Amount != amount || p.Token != token {
		return Payment{}, ErrMismatch
	}
	if p.State == StateDeclined {
		return Payment{}, ErrDeclined.With("decline_code", p.DeclineCode)
	}
	return p, nil
}

// Capture takes amount (nil: the whole authorization) of the order's
// authorized payment; a partial capture releases the rest. Capturing a
// captured payment again with no amount or the captured amount returns it.
func (s *Service) Capture(ctx context.Context, orderID string, amount *Money) (Payment, error) {
	if amount != nil && amount.Minor <= 0 {
		return Payment{}, errAmountNotPositive
	}
	unlock, err := s.locks.lock(ctx, orderID)
	if err != nil {
		return Payment{}, err
	}
	defer unlock()

	p, err := s.store.Get(ctx, orderID)
	if err != nil {
		return Payment{}, err
	}
	minor, done, err := planCapture(p, amount)
	if err != nil {
		return Payment{}, err
	}
	if done {
		return p, nil
	}
	if err := s.proc.Capture(ctx, orderID, Money{p.Amount.Currency, minor}); err != nil {
		return Payment{}, err
	}
	rctx, cancel := record(ctx)
	defer cancel()
	now := s.stamp()
	return s.store.Update(rctx, orderID, func(p *Payment) error {
		minor, done, err := planCapture(*p, amount) // the state may have moved
		if err != nil || done {
			return err
		}
		p.State, p.Captured, p.Updated = StateCaptured, minor, now
		return nil
	})
}

// planCapture says how much a capture of amount takes from p, or that p is
// already captured as asked (done), or why it cannot be captured.
func planCapture(p Payment, amount *Money) (minor int64, done bool, err error) {
	switch p.State {
	case StateAuthorized, StateCaptured:
	default:
		return 0, false, ErrStateConflict.With("state", string(p.State))
	}
	minor = p.Amount.Minor
	if amount != nil {
		if amount.Currency != p.Amount.Currency {
			return 0, false, ErrCurrencyMismatch.With("currency_code", p.Amount.Currency)
		}
		minor = amount.Minor
	}
	if minor > p.Amount.Minor {
		return 0, false, ErrCaptureExceeds.With("authorized_minor", strconv.FormatInt(p.Amount.Minor, 10))
	}
	if p.State == StateCaptured {
		if amount == nil || minor == p.Captured {
			return p.Captured, true, nil
		}
		return 0, false, ErrStateConflict.With("state", string(p.State), "captured_minor", strconv.FormatInt(p.Captured, 10))
	}
	return minor, false, nil
}

// Refund voids the order's uncaptured authorization (VOIDED) or gives its
// captured money back (REFUNDED). A voided or refunded payment is returned
// as it is. For an order with no payment, or a declined one, there is
// nothing to give back: ok is false and nothing changes, so a compensation
// can call Refund without knowing how far the payment got. A Refund that
// arrives while the order's Authorize runs waits for it.
func (s *Service) Refund(ctx context.Context, orderID string) (p Payment, ok bool, err error) {
	unlock, err := s.locks.lock(ctx, orderID)
	if err != nil {
		return Payment{}, false, err
	}
	defer unlock()

	p, err = s.store.Get(ctx, orderID)
	if errors.Is(err, ErrNotFound) {
		return Payment{}, false, nil
	}
	if err != nil {
		return Payment{}, false, err
	}
	switch p.State {
	case StateDeclined:
		return Payment{}, false, nil
	case StateVoided, StateRefunded:
		return p, true, nil
	case StateAuthorized:
		err = s.proc.Void(ctx, orderID)
	case StateCaptured:
		err = s.proc.Refund(ctx, orderID, Money{p.Amount.Currency, p.Captured})
	default:
		return Payment{}, false, fmt.Errorf("payment %s in unknown state %q", p.ID, p.State)
	}
	if err != nil {
		return Payment{}, false, err
	}
	rctx, cancel := record(ctx)
	defer cancel()
	now := s.stamp()
	p, err = s.store.Update(rctx, orderID, func(p *Payment) error {
		switch p.State {
		case StateAuthorized:
			p.State = StateVoided
		case StateCaptured:
			p.State, p.Refunded = StateRefunded, p.Captured
		default:
			return nil // moved on meanwhile: nothing left to do
		}
		p.Updated = now
		return nil
	})
	if err != nil {
		return Payment{}, false, err
	}
	return p, true, nil
}

// Get returns the order's payment.
func (s *Service) Get(ctx context.Context, orderID string) (Payment, error) {
	return s.store.Get(ctx, orderID)
}

// stamp is the current time as the store keeps it.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// record returns the context for writing down what the processor has
// already done: detached from the caller's cancellation (a caller that
// gave up must not leave money moved but unrecorded) and bounded by
// recordTimeout.
func record(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}
