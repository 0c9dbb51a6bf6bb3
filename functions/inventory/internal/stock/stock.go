// Package stock is the inventory service's domain: stock levels per SKU,
// the reservations orders hold on them, and the rules that keep the shop
// from ever selling a unit it does not have.
//
// Every change runs in one store transaction (Store.InTx) that reads what it
// needs, applies the rules here, and writes the result together with any
// low-stock event, so a change and its event commit or vanish together.
package stock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// Stock is the state of one SKU.
type Stock struct {
	SKU      string
	OnHand   int64 // units physically held
	Reserved int64 // units held by reservations not yet committed or released
	Updated  time.Time
}

// Available is what can still be reserved.
func (s Stock) Available() int64 { return s.OnHand - s.Reserved }

// State is where a reservation is in its life.
type State int

// The states. Reserved is the only one that holds units.
const (
	Reserved State = iota + 1
	Committed
	Released
	Expired
)

var stateNames = [...]string{Reserved: "reserved", Committed: "committed", Released: "released", Expired: "expired"}

// String is the state's name as the store keeps it.
func (s State) String() string {
	if s > 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState is the inverse of State.String.
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name && s > 0 {
			return State(s), nil
		}
	}
	return 0, fmt.Errorf("unknown reservation state %q", name)
}

// Line is a quantity of one SKU.
type Line struct {
	SKU      string
	Quantity int64
}

// Reservation is the units held for one order.
type Reservation struct {
	OrderID string
	Lines   []Line // in the order Reserve received them, one per SKU
	State   State
	Expires time.Time
	Created time.Time
	Updated time.Time
}

// ExpiredAt reports whether r is expired at now: in state Expired, or
// Reserved with now strictly past Expires (whether or not a sweep has
// released it yet).
func (r Reservation) ExpiredAt(now time.Time) bool {
	return r.State == Expired || (r.State == Reserved && now.After(r.Expires))
}

// tombstone reports whether r records a release that came before any
// reservation (see Release).
func (r Reservation) tombstone() bool { return r.State == Released && len(r.Lines) == 0 }

// The domain's errors. Metadata added with With names the SKU or order.
var (
	ErrSKUNotFound         = apperr.New(apperr.NotFound, errorsv1.ErrorReason_SKU_NOT_FOUND, "no stock record for this SKU")
	ErrInsufficientStock   = apperr.New(apperr.Precondition, errorsv1.ErrorReason_INSUFFICIENT_STOCK, "not enough available units")
	ErrBelowReserved       = apperr.New(apperr.Precondition, errorsv1.ErrorReason_STOCK_BELOW_RESERVED, "on_hand would be below the units currently reserved")
	ErrReservationNotFound = apperr.New(apperr.NotFound, errorsv1.ErrorReason_RESERVATION_NOT_FOUND, "no reservation for this order")
	ErrReservationReleased = apperr.New(apperr.Precondition, errorsv1.ErrorReason_RESERVATION_RELEASED, "the order's reservation was released; nothing is held")
	ErrReservationExpired  = apperr.New(apperr.Precondition, errorsv1.ErrorReason_RESERVATION_EXPIRED, "the reservation expired")
	// ErrOrderReused: the order id is Reserve's idempotency key, reused
	// with other lines.
	ErrOrderReused = apperr.New(apperr.Conflict, errorsv1.ErrorReason_RESERVATION_MISMATCH, "this order already holds a reservation with different lines")
)

// LowStock is the event recorded when a SKU's available units fall to or
// below the threshold from above it.
type LowStock struct {
	SKU       string
	Available int64
	Threshold int64
	Time      time.Time
}

// Store keeps stock and reservations. Implementations translate their
// driver's errors into ErrSKUNotFound and ErrReservationNotFound.
type Store interface {
	// Stock returns a SKU's stock, outside any transaction.
	Stock(ctx context.Context, sku string) (Stock, error)
	// InTx runs fn in one transaction that excludes every other writer,
	// committing if fn returns nil. The Tx must not be used after fn
	// returns. fn may run more than once (a Firestore transaction that
	// loses a conflict runs again): it must have no effect outside the Tx
	// beyond setting its results, which it sets afresh on every run.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is the store inside one transaction, bound to its context.
type Tx interface {
	// Stock returns a SKU's stock; ErrSKUNotFound if it has none.
	Stock(sku string) (Stock, error)
	// PutStock creates or replaces a SKU's stock.
	PutStock(s Stock) error
	// Reservation returns an order's reservation; ErrReservationNotFound.
	Reservation(orderID string) (Reservation, error)
	// CreateReservation stores a new reservation.
	CreateReservation(r Reservation) error
	// SetState changes a reservation's state and update time.
	SetState(orderID string, s State, updated time.Time) error
	// Expired returns up to limit order ids of Reserved reservations whose
	// Expires is before now, earliest first; only those holding sku unless
	// sku is empty.
	Expired(now time.Time, sku string, limit int) ([]string, error)
	// RecordLowStock records the event in the transaction's outbox.
	RecordLowStock(e LowStock) error
}

// Settings are the rules' tunables.
type Settings struct {
	// TTL is how long a reservation holds its units before it expires.
	TTL time.Duration
	// LowStockThreshold is the available level at or below which a SKU is
	// low on stock; negative means never.
	LowStockThreshold int64
}

// Service implements the inventory rules.
type Service struct {
	store     Store
	ttl       time.Duration
	threshold int64
	now       func() time.Time
}

// NewService returns the service.
func NewService(s Store, set Settings) *Service {
	return &Service{store: s, ttl: set.TTL, threshold: set.LowStockThreshold, now: time.Now}
}

// SetClock replaces the service's clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// DefaultSweepLimit is how many reservations ReleaseExpired releases when
// asked for no particular number.
const DefaultSweepLimit = 500

// sweepBatch is how many expired reservations one sweep transaction
// releases. Each costs a few row writes (well under a millisecond in all);
// 100 keeps the write lock, which every Reserve waits for, to a few
// milliseconds per transaction.
const sweepBatch = 100

// onDemandSweep bounds how many expired reservations holding a SKU a
// Reserve or SetStock releases before failing for lack of units: enough to
// free any realistic shortfall, small enough that a failing call stays
// cheap. The scheduled sweep releases the rest.
const onDemandSweep = 100

// clock is the current time as the store keeps it.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Stock returns a SKU's stock.
func (s *Service) Stock(ctx context.Context, sku string) (Stock, error) {
	st, err := s.store.Stock(ctx, sku)
	if err != nil {
		return Stock{}, withSKU(err, sku)
	}
	return st, nil
}

// SetStock sets a SKU's units on hand, creating its record if needed. It
// fails with ErrBelowReserved, changing nothing, when onHand is below the
// units reserved (after releasing expired reservations of the SKU).
func (s *Service) SetStock(ctx context.Context, sku string, onHand int64) (Stock, error) {
	if onHand < 0 {
		return Stock{}, apperr.Invalidf("on_hand", "must not be negative")
	}
	var out Stock
	var fail error
	err := s.store.InTx(ctx, func(tx Tx) error {
		out, fail = Stock{}, nil // fn may run more than once
		now := s.clock()         // with the write lock held
		before, err := tx.Stock(sku)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrSKUNotFound) {
			return err
		}
		if exists && onHand < before.Reserved {
			if err := s.releaseExpired(tx, now, sku, onDemandSweep); err != nil {
				return err
			}
			if before, err = tx.Stock(sku); err != nil {
				return err
			}
			if onHand < before.Reserved {
				// Keep what the sweep released; change nothing else.
				fail = ErrBelowReserved.With("sku", sku, "reserved", strconv.FormatInt(before.Reserved, 10))
				return nil
			}
		}
		if exists && before.OnHand == onHand {
			out = before // already so: nothing to write
			return nil
		}
		out = Stock{SKU: sku, OnHand: onHand, Reserved: before.Reserved, Updated: now}
		return s.putStock(tx, before, exists, out)
	})
	if err != nil {
		return Stock{}, fmt.Errorf("set stock of %s: %w", sku, err)
	}
	if fail != nil {
		return Stock{}, fail
	}
	return out, nil
}

// Reserve holds lines for orderID, all or none. A retry with the same lines
// returns the existing reservation in its current state; other lines fail
// with ErrOrderReused, and an order released before it reserved with
// ErrReservationReleased.
func (s *Service) Reserve(ctx context.Context, orderID string, lines []Line) (Reservation, error) {
	if err := checkLines(lines); err != nil {
		return Reservation{}, err
	}
	var out Reservation
	var fail error
	err := s.store.InTx(ctx, func(tx Tx) error {
		out, fail = Reservation{}, nil // fn may run more than once
		now := s.clock()               // with the write lock held
		prev, err := tx.Reservation(orderID)
		switch {
		case err == nil:
			if prev.tombstone() {
				fail = ErrReservationReleased.With("order_id", orderID)
				return nil
			}
			if !sameLines(prev.Lines, lines) {
				fail = ErrOrderReused.With("order_id", orderID)
				return nil
			}
			out, err = s.expireIfDue(tx, prev, now)
			return err
		case !errors.Is(err, ErrReservationNotFound):
			return err
		}

		stocks, short, err := s.check(tx, lines)
		if err != nil {
			return err
		}
		if short >= 0 {
			// Expired reservations may be holding the units: release those
			// of the SKUs that fall short, then look again.
			for _, l := range lines {
				if stocks[l.SKU].Available() < l.Quantity {
					if err := s.releaseExpired(tx, now, l.SKU, onDemandSweep); err != nil {
						return err
					}
				}
			}
			if stocks, short, err = s.check(tx, lines); err != nil {
				return err
			}
			if short >= 0 {
				// Commit the releases, if any; reserve nothing.
				l := lines[short]
				fail = ErrInsufficientStock.With("sku", l.SKU,
					"requested", strconv.FormatInt(l.Quantity, 10),
					"available", strconv.FormatInt(stocks[l.SKU].Available(), 10))
				return nil
			}
		}
		for _, l := range lines {
			before := stocks[l.SKU]
			after := before
			after.Reserved += l.Quantity
			after.Updated = now
			if err := s.putStock(tx, before, true, after); err != nil {
				return err
			}
		}
		out = Reservation{
			OrderID: orderID, Lines: lines, State: Reserved,
			Expires: now.Add(s.ttl), Created: now, Updated: now,
		}
		return tx.CreateReservation(out)
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve for %s: %w", orderID, err)
	}
	if fail != nil {
		return Reservation{}, fail
	}
	return out, nil
}

// check reads the stock of every line and returns it by SKU, with the index
// of the first line asking for more than is available (-1 if none). An
// unknown SKU is ErrSKUNotFound.
func (s *Service) check(tx Tx, lines []Line) (map[string]Stock, int, error) {
	stocks := make(map[string]Stock, len(lines))
	short := -1
	for i, l := range lines {
		st, err := tx.Stock(l.SKU)
		if err != nil {
			return nil, 0, withSKU(err, l.SKU)
		}
		stocks[l.SKU] = st
		if short < 0 && st.Available() < l.Quantity {
			short = i
		}
	}
	return stocks, short, nil
}

// Commit turns orderID's reservation into a sale. Committing a committed
// reservation returns it unchanged. An expired reservation fails with
// ErrReservationExpired (its units are released first if still held), a
// released one with ErrReservationReleased.
func (s *Service) Commit(ctx context.Context, orderID string) (Reservation, error) {
	var out Reservation
	var fail error
	err := s.store.InTx(ctx, func(tx Tx) error {
		out, fail = Reservation{}, nil // fn may run more than once
		now := s.clock()               // with the write lock held
		r, err := tx.Reservation(orderID)
		if err != nil {
			return err
		}
		switch {
		case r.State == Committed:
			out = r
			return nil
		case r.State == Released:
			fail = ErrReservationReleased.With("order_id", orderID)
			return nil
		case r.ExpiredAt(now):
			if _, err := s.expireIfDue(tx, r, now); err != nil {
				return err
			}
			fail = ErrReservationExpired.With("order_id", orderID)
			return nil
		}
		for _, l := range r.Lines {
			before, err := tx.Stock(l.SKU)
			if err != nil {
				return err
			}
			after := before
			after.OnHand -= l.Quantity
			after.Reserved -= l.Quantity
			after.Updated = now
			if err := s.putStock(tx, before, true, after); err != nil {
				return err
			}
		}
		r.State, r.Updated = Committed, now
		out = r
		return tx.SetState(orderID, Committed, now)
	})
	if err != nil {
		return Reservation{}, fmt.Errorf("commit for %s: %w", orderID, err)
	}
	if fail != nil {
		return Reservation{}, fail
	}
	return out, nil
}

// Release gives orderID's units back: a held reservation's to available
// (state Released, or Expired if it had expired), a committed one's to
// on_hand (state Released). Released and expired reservations are returned
// unchanged. An order with no reservation is not an error: found is false,
// and a tombstone (a Released reservation with no lines) is recorded, so a
// Reserve for the order delayed behind this compensation reserves nothing.
func (s *Service) Release(ctx context.Context, orderID string) (r Reservation, found bool, err error) {
	err = s.store.InTx(ctx, func(tx Tx) error {
		r, found = Reservation{}, false // fn may run more than once
		now := s.clock()                // with the write lock held
		var err error
		r, err = tx.Reservation(orderID)
		if errors.Is(err, ErrReservationNotFound) {
			r = Reservation{}
			return tx.CreateReservation(Reservation{OrderID: orderID, State: Released, Expires: now, Created: now, Updated: now})
		}
		if err != nil {
			return err
		}
		if r.tombstone() { // released before: still no reservation
			r = Reservation{}
			return nil
		}
		found = true
		switch {
		case r.State == Released || r.State == Expired:
			return nil
		case r.State == Reserved && r.ExpiredAt(now):
			r, err = s.expireIfDue(tx, r, now)
			return err
		case r.State == Reserved, r.State == Committed:
			r, err = s.giveBack(tx, r, Released, now)
			return err
		}
		return fmt.Errorf("reservation %s in state %v", orderID, r.State)
	})
	if err != nil {
		return Reservation{}, false, fmt.Errorf("release for %s: %w", orderID, err)
	}
	return r, found, nil
}

// ReleaseExpired releases up to limit reservations past their expiry time
// (DefaultSweepLimit if limit is 0 or less), earliest first, marks them
// Expired and returns how many it released. It works in batches, each in
// its own transaction, so writers wait at most one batch; a failure keeps
// the batches already committed.
func (s *Service) ReleaseExpired(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = DefaultSweepLimit
	}
	done := 0
	for done < limit {
		want := min(sweepBatch, limit-done)
		n := 0
		err := s.store.InTx(ctx, func(tx Tx) error {
			n = 0            // fn may run more than once
			now := s.clock() // with the write lock held
			ids, err := tx.Expired(now, "", want)
			if err != nil {
				return err
			}
			n = len(ids)
			return s.expireAll(tx, ids, now)
		})
		if err != nil {
			return done, fmt.Errorf("release expired reservations: %w", err)
		}
		done += n
		if n < want {
			break // nothing more is due
		}
	}
	return done, nil
}

// releaseExpired releases up to limit expired reservations holding sku.
func (s *Service) releaseExpired(tx Tx, now time.Time, sku string, limit int) error {
	ids, err := tx.Expired(now, sku, limit)
	if err != nil {
		return err
	}
	return s.expireAll(tx, ids, now)
}

func (s *Service) expireAll(tx Tx, ids []string, now time.Time) error {
	for _, id := range ids {
		r, err := tx.Reservation(id)
		if err != nil {
			return err
		}
		if _, err := s.expireIfDue(tx, r, now); err != nil {
			return err
		}
	}
	return nil
}

// expireIfDue releases r's units and marks it Expired if it is Reserved and
// past its expiry; otherwise it returns r unchanged.
func (s *Service) expireIfDue(tx Tx, r Reservation, now time.Time) (Reservation, error) {
	if r.State != Reserved || !r.ExpiredAt(now) {
		return r, nil
	}
	return s.giveBack(tx, r, Expired, now)
}

// giveBack returns r's units (to available if it was Reserved, to on_hand if
// it was Committed) and moves it to state to.
func (s *Service) giveBack(tx Tx, r Reservation, to State, now time.Time) (Reservation, error) {
	for _, l := range r.Lines {
		before, err := tx.Stock(l.SKU)
		if err != nil {
			return Reservation{}, err
		}
		after := before
		switch r.State {
		case Reserved:
			after.Reserved -= l.Quantity
		case Committed:
			after.OnHand += l.Quantity
		default:
			return Reservation{}, fmt.Errorf("give back reservation %s in state %v", r.OrderID, r.State)
		}
		after.Updated = now
		if err := s.putStock(tx, before, true, after); err != nil {
			return Reservation{}, err
		}
	}
	if err := tx.SetState(r.OrderID, to, now); err != nil {
		return Reservation{}, err
	}
	r.State, r.Updated = to, now
	return r, nil
}

// putStock writes after and, when the change takes the SKU's available
// units from above the threshold to at or below it, records one LowStock
// event in the same transaction. existed says whether before was read from
// the store (a new SKU was never above the threshold).
func (s *Service) putStock(tx Tx, before Stock, existed bool, after Stock) error {
	if after.OnHand < 0 || after.Reserved < 0 || after.Reserved > after.OnHand {
		// The rules above never get here; the store refuses it too.
		return fmt.Errorf("stock of %s would be on_hand=%d reserved=%d", after.SKU, after.OnHand, after.Reserved)
	}
	if err := tx.PutStock(after); err != nil {
		return err
	}
	if existed && before.Available() > s.threshold && after.Available() <= s.threshold {
		return tx.RecordLowStock(LowStock{SKU: after.SKU, Available: after.Available(), Threshold: s.threshold, Time: after.Updated})
	}
	return nil
}

// checkLines rejects what the request rules cannot express: a SKU in two
// lines, and (for callers that skipped validation) empty requests and
// non-positive quantities.
func checkLines(lines []Line) error {
	if len(lines) == 0 {
		return apperr.Invalidf("lines", "name at least one line")
	}
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		if l.Quantity <= 0 {
			return apperr.Invalidf(fmt.Sprintf("lines[%d].quantity", i), "must be positive")
		}
		if j, dup := seen[l.SKU]; dup {
			return apperr.Invalidf(fmt.Sprintf("lines[%d].sku", i), "SKU %q is also in lines[%d]; use one line per SKU", l.SKU, j)
		}
		seen[l.SKU] = i
	}
	return nil
}

// sameLines reports whether a and b hold the same quantities of the same
// SKUs, in any order. Both have one line per SKU.
func sameLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]int64, len(a))
	for _, l := range a {
		m[l.SKU] = l.Quantity
	}
	for _, l := range b {
		if q, ok := m[l.SKU]; !ok || q != l.Quantity {
			return false
		}
	}
	return true // as many lines, each SKU once: the same set
}

// withSKU adds the SKU to a not-found error's metadata.
func withSKU(err error, sku string) error {
	if errors.Is(err, ErrSKUNotFound) {
		return ErrSKUNotFound.With("sku", sku)
	}
	return err
}
