// Package paymentfs stores payments, and the simulated processor's attempt
// counts, in Firestore, for deployments with several instances
// (SHOPFN_STORE=firestore); paymentdb is the SQLite store for one.
//
// The database (one per service, see serve.Platform.FirestoreDatabaseName)
// has two collections, both keyed by the order id, which is the domain's
// key (one payment per order):
//
//   - "payments": one document per order with its payment's fields (the
//     payment id, state, token, amounts in minor units, card hints, times
//     with Firestore's microsecond precision). A second Create for the
//     order fails on the existing document: that is the uniqueness of the
//     order id, and the service's idempotency.
//   - "processor_attempts": one document per order with the simulator's
//     attempt count.
//
// Order ids come from callers (1 to 64 characters of anything); an id a
// document name cannot hold is encoded (see fsstore.DocID), and the plain
// id is kept in the document's order_id field.
//
// The SQLite schema's CHECK constraints (known state, positive amount,
// 0 ≤ refunded ≤ captured ≤ amount) are checked here before every write:
// Firestore has none. The payment id is a random store.NewID and is not
// indexed for uniqueness (SQLite's UNIQUE on it only guards against a
// collision that does not happen).
//
// Every read-modify-write (Update, NextAttempt) runs in a transaction
// (reads before writes, nothing but local variables set inside, since the
// client runs the function again when the transaction aborts). There is no
// in-memory cache: several instances write.
package paymentfs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/functions/payment/internal/cardsim"
	"github.com/shopfn/shopfn/functions/payment/internal/charge"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// The collections.
const (
	Payments = "payments"
	Attempts = "processor_attempts"
)

// payment is a document of Payments.
type payment struct {
	OrderID     string    `firestore:"order_id"`
	ID          string    `firestore:"id"`
	State       string    `firestore:"state"`
	Token       string    `firestore:"payment_token"`
	Currency    string    `firestore:"currency_code"`
	Amount      int64     `firestore:"amount_minor"`
	Captured    int64     `firestore:"captured_minor"`
	Refunded    int64     `firestore:"refunded_minor"`
	CardBrand   string    `firestore:"card_brand"`
	CardLast4   string    `firestore:"card_last4"`
	DeclineCode string    `firestore:"decline_code"`
	Created     time.Time `firestore:"create_time"`
	Updated     time.Time `firestore:"update_time"`
}

// attempts is a document of Attempts.
type attempts struct {
	OrderID  string `firestore:"order_id"`
	Attempts int64  `firestore:"attempts"`
}

// Store is charge.Store, and cardsim.Attempts, on Firestore.
type Store struct {
	*fsstore.Conn
}

var (
	_ charge.Store     = (*Store)(nil)
	_ cardsim.Attempts = (*Store)(nil)
)

// Open starts connecting to the named database of project in the
// background and returns the store at once; its calls wait for the client.
// Done and Err report when it is ready, or why it failed.
func Open(ctx context.Context, project, database string) *Store {
	return &Store{Conn: fsstore.OpenInBackground(ctx, project, database)}
}

// Get implements charge.Store.
func (s *Store) Get(ctx context.Context, orderID string) (charge.Payment, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return charge.Payment{}, err
	}
	snap, err := c.Collection(Payments).Doc(fsstore.DocID(orderID)).Get(ctx)
	if err != nil {
		return charge.Payment{}, readErr(err)
	}
	return fromSnap(snap)
}

// Create implements charge.Store.
func (s *Store) Create(ctx context.Context, p charge.Payment) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	if err := check(p); err != nil {
		return err
	}
	// One write, conditional on the document not existing: no transaction
	// is needed for it to be atomic.
	_, err = c.Collection(Payments).Doc(fsstore.DocID(p.OrderID)).Create(ctx, toDoc(p))
	if fsstore.IsAlreadyExists(err) {
		return fmt.Errorf("insert payment: %w", charge.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// Update implements charge.Store. Only the state, the captured and
// refunded amounts and the update time can change.
func (s *Store) Update(ctx context.Context, orderID string, fn func(*charge.Payment) error) (charge.Payment, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return charge.Payment{}, err
	}
	ref := c.Collection(Payments).Doc(fsstore.DocID(orderID))
	var out charge.Payment
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return readErr(err)
		}
		old, err := fromSnap(snap)
		if err != nil {
			return err
		}
		p := old
		if err := fn(&p); err != nil {
			return err
		}
		// What SQLite's UPDATE leaves alone stays as it was.
		kept := old
		kept.State, kept.Captured, kept.Refunded, kept.Updated = p.State, p.Captured, p.Refunded, p.Updated
		if err := check(kept); err != nil {
			return err
		}
		if err := tx.Set(ref, toDoc(kept)); err != nil {
			return err
		}
		out = kept
		return nil
	}, firestore.MaxAttempts(fsstore.MaxAttempts))
	if err != nil {
		return charge.Payment{}, err
	}
	return out, nil
}

// NextAttempt implements cardsim.Attempts in one transaction.
func (s *Store) NextAttempt(ctx context.Context, orderID string) (int, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return 0, err
	}
	ref := c.Collection(Attempts).Doc(fsstore.DocID(orderID))
	var n int64
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var a attempts
		snap, err := tx.Get(ref)
		switch {
		case err == nil:
			if err := snap.DataTo(&a); err != nil {
				return fmt.Errorf("decode processor attempts of %s: %w", orderID, err)
			}
		case !fsstore.IsNotFound(err):
			return err
		}
		next := attempts{OrderID: orderID, Attempts: a.Attempts + 1}
		if err := tx.Set(ref, next); err != nil {
			return err
		}
		n = next.Attempts
		return nil
	}, firestore.MaxAttempts(fsstore.MaxAttempts))
	if err != nil {
		return 0, fmt.Errorf("count processor attempt: %w", err)
	}
	return int(n), nil
}

// errInvalid is a payment the schema would refuse; the service never
// writes one.
var errInvalid = errors.New("payment breaks the store's invariants")

// check enforces what paymentdb's schema does with CHECK constraints.
func check(p charge.Payment) error {
	switch p.State {
	case charge.StateAuthorized, charge.StateCaptured, charge.StateRefunded, charge.StateVoided, charge.StateDeclined:
	default:
		return fmt.Errorf("%w: state %q", errInvalid, p.State)
	}
	if p.Amount.Minor <= 0 || p.Captured < 0 || p.Captured > p.Amount.Minor || p.Refunded < 0 || p.Refunded > p.Captured {
		return fmt.Errorf("%w: amount %d, captured %d, refunded %d", errInvalid, p.Amount.Minor, p.Captured, p.Refunded)
	}
	return nil
}

// readErr translates a failed read of a payment document.
func readErr(err error) error {
	if fsstore.IsNotFound(err) {
		return charge.ErrNotFound
	}
	return fmt.Errorf("read payment: %w", err)
}

func toDoc(p charge.Payment) payment {
	return payment{
		OrderID: p.OrderID, ID: p.ID, State: string(p.State), Token: p.Token, Currency: p.Amount.Currency,
		Amount: p.Amount.Minor, Captured: p.Captured, Refunded: p.Refunded, CardBrand: p.CardBrand,
		CardLast4: p.CardLast4, DeclineCode: p.DeclineCode, Created: p.Created.UTC(), Updated: p.Updated.UTC(),
	}
}

func fromSnap(snap *firestore.DocumentSnapshot) (charge.Payment, error) {
	var d payment
	if err := snap.DataTo(&d); err != nil {
		return charge.Payment{}, fmt.Errorf("decode payment %s: %w", snap.Ref.ID, err)
	}
	return charge.Payment{
		ID: d.ID, OrderID: d.OrderID, State: charge.State(d.State), Token: d.Token,
		Amount:   charge.Money{Currency: d.Currency, Minor: d.Amount},
		Captured: d.Captured, Refunded: d.Refunded, CardBrand: d.CardBrand, CardLast4: d.CardLast4,
		DeclineCode: d.DeclineCode, Created: d.Created.UTC(), Updated: d.Updated.UTC(),
	}, nil
}
