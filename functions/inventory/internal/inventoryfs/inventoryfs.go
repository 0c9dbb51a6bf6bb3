// Package inventoryfs stores stock and reservations in Firestore (one named
// database of the service), with the outbox of the events their changes
// record (shared/outbox/fsoutbox), for instances that share their data.
//
// Documents:
//
//   - stock/{sku}: sku, on_hand, reserved, update_time.
//   - reservations/{order id}: order_id, state, lines (an array of
//     {sku, quantity} in Reserve's order), expire_time, create_time,
//     update_time, and hold_expire_time: a copy of expire_time present only
//     while the reservation is held (state "reserved"), so that "held and
//     past its expiry" is one range query on a single-field index, which
//     Firestore creates by itself (no composite index to deploy).
//   - outbox/{event id}: the low-stock events (fsoutbox).
//
// A document is named by its domain id, unless that id cannot name a
// document (it contains "/", is "." or "..", looks like "__x__", or
// starts with "~"): then by "~" and the id in unpadded base64url. The id
// is also a field of the document.
//
// Every Store.InTx is one Firestore transaction (serializable: it fails
// and runs again if a document it read changed before it committed). Tx
// gives read-your-writes by keeping, per run, the documents it read and
// what it changed; Firestore allows no read after a write in a
// transaction, so the writes (and the outbox events) are buffered and
// handed to the transaction only after the domain's function returns.
// Nothing is cached between calls: several instances write.
//
// Limitation: Expired with a SKU (the on-demand release of Reserve and
// SetStock) reads the earliest expiredScan held-and-expired reservations,
// whatever they hold, and keeps those holding the SKU: a SKU-and-expiry
// query would need a composite index (lines are an array of maps, so it
// would also need a denormalised array of SKUs). When more than
// expiredScan reservations of other SKUs expired earlier, the on-demand
// release misses this SKU's and the call fails for lack of units until the
// scheduled sweep (ReleaseExpired, every 30 s) has caught up.
package inventoryfs

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/functions/inventory/internal/stock"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/outbox/fsoutbox"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// Source is the CloudEvent source of the events inventory records.
const Source = "//shopfn/inventory"

// The collections.
const (
	stockColl       = "stock"
	reservationColl = "reservations"
)

// holdField is the field the expiry query ranges over.
const holdField = "hold_expire_time"

// expiredScan bounds how many held-and-expired reservations Expired with a
// SKU reads to find those holding it: the on-demand release asks for at
// most 100 of one SKU, and a transaction reading (and locking) more than a
// few hundred documents would slow every Reserve that waits on them.
const expiredScan = 300

// Store is stock.Store on Firestore.
type Store struct {
	*fsstore.Conn
}

var _ stock.Store = (*Store)(nil)

// Open starts connecting to the database of project in the background and
// returns the store at once; its calls wait for the client. Done and Err
// report when it is ready, or why it failed.
func Open(ctx context.Context, project, database string) *Store {
	return &Store{Conn: fsstore.OpenInBackground(ctx, project, database)}
}

// Outbox waits for the client and returns the database's outbox, for the
// relay; its commit listener runs until ctx ends.
func (s *Store) Outbox(ctx context.Context) (outbox.Store, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	return fsoutbox.New(ctx, c), nil
}

// stockDoc is a stock document.
type stockDoc struct {
	SKU      string    `firestore:"sku"`
	OnHand   int64     `firestore:"on_hand"`
	Reserved int64     `firestore:"reserved"`
	Updated  time.Time `firestore:"update_time"`
}

// lineDoc is one line of a reservation document.
type lineDoc struct {
	SKU      string `firestore:"sku"`
	Quantity int64  `firestore:"quantity"`
}

// reservationDoc is a reservation document.
type reservationDoc struct {
	OrderID string    `firestore:"order_id"`
	State   string    `firestore:"state"`
	Lines   []lineDoc `firestore:"lines"`
	Expires time.Time `firestore:"expire_time"`
	Created time.Time `firestore:"create_time"`
	Updated time.Time `firestore:"update_time"`
	// HoldExpires is Expires while the state is "reserved", else absent.
	HoldExpires *time.Time `firestore:"hold_expire_time,omitempty"`
}

func toStockDoc(s stock.Stock) stockDoc {
	return stockDoc{SKU: s.SKU, OnHand: s.OnHand, Reserved: s.Reserved, Updated: s.Updated.UTC()}
}

func (d stockDoc) stock() stock.Stock {
	return stock.Stock{SKU: d.SKU, OnHand: d.OnHand, Reserved: d.Reserved, Updated: d.Updated.UTC()}
}

func toReservationDoc(r stock.Reservation) reservationDoc {
	d := reservationDoc{
		OrderID: r.OrderID, State: r.State.String(), Lines: make([]lineDoc, len(r.Lines)),
		Expires: r.Expires.UTC(), Created: r.Created.UTC(), Updated: r.Updated.UTC(),
	}
	for i, l := range r.Lines {
		d.Lines[i] = lineDoc(l)
	}
	if r.State == stock.Reserved {
		hold := d.Expires
		d.HoldExpires = &hold
	}
	return d
}

func (d reservationDoc) reservation() (stock.Reservation, error) {
	st, err := stock.ParseState(d.State)
	if err != nil {
		return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", d.OrderID, err)
	}
	r := stock.Reservation{
		OrderID: d.OrderID, State: st, Lines: make([]stock.Line, len(d.Lines)),
		Expires: d.Expires.UTC(), Created: d.Created.UTC(), Updated: d.Updated.UTC(),
	}
	for i, l := range d.Lines {
		r.Lines[i] = stock.Line(l)
	}
	return r, nil
}

// reserved matches ids Firestore does not accept as document names.
var reserved = regexp.MustCompile(`^__.*__$`)

// docID names the document of a domain id (see the package doc).
func docID(id string) string {
	if id == "" || id == "." || id == ".." || strings.ContainsRune(id, '/') || strings.HasPrefix(id, "~") || reserved.MatchString(id) {
		return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	return id
}

// Stock implements stock.Store: one document read, outside any
// transaction.
func (s *Store) Stock(ctx context.Context, sku string) (stock.Stock, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return stock.Stock{}, err
	}
	snap, err := c.Collection(stockColl).Doc(docID(sku)).Get(ctx)
	if fsstore.IsNotFound(err) {
		return stock.Stock{}, stock.ErrSKUNotFound
	}
	if err != nil {
		return stock.Stock{}, fmt.Errorf("read stock of %s: %w", sku, err)
	}
	var d stockDoc
	if err := snap.DataTo(&d); err != nil {
		return stock.Stock{}, fmt.Errorf("read stock of %s: %w", sku, err)
	}
	return d.stock(), nil
}

// InTx implements stock.Store with one Firestore transaction
// (fsstore.RunTransaction), which runs fn again (up to fsstore.MaxAttempts
// times in all) when it loses a conflict. A context that has ended begins
// nothing, and one that ends during the transaction rolls it back.
func (s *Store) InTx(ctx context.Context, fn func(stock.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	return fsstore.RunTransaction(ctx, c, func(tctx context.Context, ftx *firestore.Transaction) error {
		t := &tx{ctx: tctx, c: c, ftx: ftx, stock: map[string]*stockEntry{}, res: map[string]*resEntry{}}
		if err := fn(t); err != nil {
			return err
		}
		if err := t.ctx.Err(); err != nil {
			return err
		}
		return t.flush()
	})
}

// stockEntry is a stock document as this run of the transaction knows it.
type stockEntry struct {
	exists bool
	s      stock.Stock
	dirty  bool
}

// resEntry is a reservation document as this run of the transaction knows
// it.
type resEntry struct {
	exists  bool
	r       stock.Reservation
	dirty   bool
	created bool
}

// tx is stock.Tx on one run of a Firestore transaction: reads go to the
// transaction (once per document), writes to the entries, which flush
// hands to the transaction when fn has returned.
type tx struct {
	ctx    context.Context
	c      *firestore.Client
	ftx    *firestore.Transaction
	stock  map[string]*stockEntry
	res    map[string]*resEntry
	events []outbox.Event
}

func (t *tx) stockRef(sku string) *firestore.DocumentRef {
	return t.c.Collection(stockColl).Doc(docID(sku))
}

func (t *tx) resRef(orderID string) *firestore.DocumentRef {
	return t.c.Collection(reservationColl).Doc(docID(orderID))
}

func (t *tx) stockEntry(sku string) (*stockEntry, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if e, ok := t.stock[sku]; ok {
		return e, nil
	}
	snap, err := t.ftx.Get(t.stockRef(sku))
	e := &stockEntry{}
	switch {
	case fsstore.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read stock of %s: %w", sku, err)
	default:
		var d stockDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("read stock of %s: %w", sku, err)
		}
		e.exists, e.s = true, d.stock()
	}
	t.stock[sku] = e
	return e, nil
}

func (t *tx) Stock(sku string) (stock.Stock, error) {
	e, err := t.stockEntry(sku)
	if err != nil {
		return stock.Stock{}, err
	}
	if !e.exists {
		return stock.Stock{}, stock.ErrSKUNotFound
	}
	return e.s, nil
}

func (t *tx) PutStock(s stock.Stock) error {
	if s.OnHand < 0 || s.Reserved < 0 || s.Reserved > s.OnHand {
		// What SQLite's CHECK constraints refuse.
		return fmt.Errorf("write stock of %s: on_hand=%d reserved=%d breaks 0 <= reserved <= on_hand", s.SKU, s.OnHand, s.Reserved)
	}
	e, err := t.stockEntry(s.SKU)
	if err != nil {
		return err
	}
	e.exists, e.s, e.dirty = true, s, true
	e.s.Updated = s.Updated.UTC().Truncate(time.Microsecond) // what Firestore keeps
	return nil
}

func (t *tx) resEntry(orderID string) (*resEntry, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if e, ok := t.res[orderID]; ok {
		return e, nil
	}
	snap, err := t.ftx.Get(t.resRef(orderID))
	e := &resEntry{}
	switch {
	case fsstore.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read reservation %s: %w", orderID, err)
	default:
		if e.r, err = decodeReservation(snap); err != nil {
			return nil, err
		}
		e.exists = true
	}
	t.res[orderID] = e
	return e, nil
}

func decodeReservation(snap *firestore.DocumentSnapshot) (stock.Reservation, error) {
	var d reservationDoc
	if err := snap.DataTo(&d); err != nil {
		return stock.Reservation{}, fmt.Errorf("read reservation %s: %w", snap.Ref.ID, err)
	}
	return d.reservation()
}

func (t *tx) Reservation(orderID string) (stock.Reservation, error) {
	e, err := t.resEntry(orderID)
	if err != nil {
		return stock.Reservation{}, err
	}
	if !e.exists {
		return stock.Reservation{}, stock.ErrReservationNotFound
	}
	return cloneReservation(e.r), nil
}

func (t *tx) CreateReservation(r stock.Reservation) error {
	e, err := t.resEntry(r.OrderID)
	if err != nil {
		return err
	}
	if e.exists {
		return fmt.Errorf("insert reservation %s: it exists", r.OrderID)
	}
	if len(r.Lines) == 0 && r.State != stock.Released { // only a release's tombstone has none
		return fmt.Errorf("insert reservation %s: no lines", r.OrderID)
	}
	e.exists, e.r, e.dirty, e.created = true, cloneReservation(r), true, true
	return nil
}

func (t *tx) SetState(orderID string, s stock.State, updated time.Time) error {
	e, err := t.resEntry(orderID)
	if err != nil {
		return err
	}
	if !e.exists {
		return stock.ErrReservationNotFound
	}
	e.r.State, e.r.Updated, e.dirty = s, updated.UTC(), true
	return nil
}

func (t *tx) Expired(now time.Time, sku string, limit int) ([]string, error) {
	if err := t.ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	scan := limit
	if sku != "" {
		scan = max(limit, expiredScan)
	}
	q := t.c.Collection(reservationColl).Where(holdField, "<", now.UTC()).OrderBy(holdField, firestore.Asc).Limit(scan)
	snaps, err := t.ftx.Documents(q).GetAll()
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	var ids []string
	for _, snap := range snaps {
		r, err := decodeReservation(snap)
		if err != nil {
			return nil, err
		}
		if e, ok := t.res[r.OrderID]; ok {
			r = e.r // this transaction's view of it
		} else {
			t.res[r.OrderID] = &resEntry{exists: true, r: r}
		}
		if r.State != stock.Reserved || !now.After(r.Expires) || (sku != "" && !holds(r, sku)) {
			continue
		}
		ids = append(ids, r.OrderID)
		if len(ids) == limit {
			break
		}
	}
	return ids, nil
}

func holds(r stock.Reservation, sku string) bool {
	return slices.ContainsFunc(r.Lines, func(l stock.Line) bool { return l.SKU == sku })
}

func (t *tx) RecordLowStock(e stock.LowStock) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	t.events = append(t.events, outbox.Event{
		Type:        outbox.TypeLowStock,
		Source:      Source,
		Subject:     e.SKU,
		OrderingKey: e.SKU,
		Time:        e.Time,
		Data:        &eventsv1.LowStock{Sku: e.SKU, Available: e.Available, Threshold: e.Threshold},
	})
	return nil
}

// flush hands the buffered writes and events to the transaction, in a
// fixed order.
func (t *tx) flush() error {
	for _, sku := range slices.Sorted(maps.Keys(t.stock)) {
		e := t.stock[sku]
		if !e.dirty {
			continue
		}
		if err := t.ftx.Set(t.stockRef(sku), toStockDoc(e.s)); err != nil {
			return fmt.Errorf("write stock of %s: %w", sku, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.res)) {
		e := t.res[id]
		if !e.dirty {
			continue
		}
		var err error
		if e.created {
			err = t.ftx.Create(t.resRef(id), toReservationDoc(e.r))
		} else {
			err = t.ftx.Set(t.resRef(id), toReservationDoc(e.r))
		}
		if err != nil {
			return fmt.Errorf("write reservation %s: %w", id, err)
		}
	}
	for _, ev := range t.events {
		if _, err := fsoutbox.Append(t.ctx, t.c, t.ftx, ev); err != nil {
			return err
		}
	}
	return nil
}

func cloneReservation(r stock.Reservation) stock.Reservation {
	r.Lines = slices.Clone(r.Lines)
	return r
}
