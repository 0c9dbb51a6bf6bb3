// Package orderfs stores orders in Firestore (one named database of the
// service), with the outbox of their events (shared/outbox/fsoutbox), for
// instances that share their data.
//
// Documents:
//
//   - orders/{order id}: the order (user_id, state, lines, totals, the
//     address as binary shopfn.common.v1.Address, saga progress,
//     lease_owner, lease_until, version, create_time, update_time), and
//     open_update_time: a copy of update_time present only while the order
//     is not terminal, so that Unfinished is one range query on a
//     single-field index, which Firestore creates by itself.
//   - users/{user id}/orders/{order id}: {create_time}, written with the
//     order: a user's orders newest first is then one query of that
//     collection on its single-field index, where a filter on user_id of
//     orders would need a composite index (user_id, create_time, name).
//   - users/{user id}/idempotency_keys/{key}: {order_id}: Firestore has no
//     unique index, so Create creates this document in the order's
//     transaction; a second order with the same key finds it.
//   - outbox/{event id}: order.confirmed ("{order id}-confirmed") and
//     order.cancelled ("{order id}-cancelled"), ordered by the order id.
//
// A document is named by its domain id, unless that id cannot name a
// document (it contains "/", is "." or "..", looks like "__x__", or
// starts with "~"): then by "~" and the id in unpadded base64url. List's
// tie-break on equal create_time is the document name, so it matches the
// SQLite store's id order for the ids the service makes ("ord_…").
//
// Create and Update are Firestore transactions; Update runs its function
// again (on a fresh read) when it loses a conflict. Nothing is cached:
// several instances write.
//
// Limitation: Unfinished filters the lease in memory (lease_until is a
// second range, which would need a composite index): it reads held
// orders in update-time order, in pages, up to unfinishedScan of them per
// call, and skips those leased now. Only running sagas hold leases, so the
// scan ends early unless thousands run at once; a call that reaches the
// bound returns what it found, and the next Resume continues.
package orderfs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/order/internal/orders"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/outbox/fsoutbox"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// Source is the CloudEvents source of the order service's events.
const Source = "//shopfn/order"

// The collections.
const (
	ordersColl = "orders"
	usersColl  = "users"
	keysColl   = "idempotency_keys"
)

// openField is the field Unfinished ranges over.
const openField = "open_update_time"

// unfinishedScan bounds how many held orders one Unfinished call reads to
// find unleased ones; unfinishedPage is how many it reads per query.
// Resume asks for 100 at a time; a few pages cover the sagas running now.
const (
	unfinishedScan = 1000
	unfinishedPage = 200
)

// Store is orders.Store on Firestore.
type Store struct {
	*fsstore.Conn
}

var _ orders.Store = (*Store)(nil)

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

// reserved matches ids Firestore does not accept as document names.
var reserved = regexp.MustCompile(`^__.*__$`)

// docID names the document of a domain id (see the package doc).
func docID(id string) string {
	if id == "" || id == "." || id == ".." || strings.ContainsRune(id, '/') || strings.HasPrefix(id, "~") || reserved.MatchString(id) {
		return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	return id
}

func orderRef(c *firestore.Client, id string) *firestore.DocumentRef {
	return c.Collection(ordersColl).Doc(docID(id))
}

func userOrderRef(c *firestore.Client, userID, id string) *firestore.DocumentRef {
	return c.Collection(usersColl).Doc(docID(userID)).Collection(ordersColl).Doc(docID(id))
}

func keyRef(c *firestore.Client, userID, key string) *firestore.DocumentRef {
	return c.Collection(usersColl).Doc(docID(userID)).Collection(keysColl).Doc(docID(key))
}

// moneyDoc is an amount.
type moneyDoc struct {
	Currency string `firestore:"currency"`
	Minor    int64  `firestore:"minor"`
}

// lineDoc is one line of an order.
type lineDoc struct {
	ProductID string   `firestore:"product_id"`
	SKU       string   `firestore:"sku"`
	Name      string   `firestore:"name"`
	Quantity  int64    `firestore:"quantity"`
	UnitPrice moneyDoc `firestore:"unit_price"`
}

// invoiceDoc is an order's invoice.
type invoiceDoc struct {
	Number  string    `firestore:"number"`
	Object  string    `firestore:"object"`
	Created time.Time `firestore:"create_time"`
}

// orderDoc is an order document.
type orderDoc struct {
	ID              string      `firestore:"id"`
	UserID          string      `firestore:"user_id"`
	State           string      `firestore:"state"`
	Lines           []lineDoc   `firestore:"lines"`
	Subtotal        moneyDoc    `firestore:"subtotal"`
	Tax             moneyDoc    `firestore:"tax"`
	Total           moneyDoc    `firestore:"total"`
	Address         []byte      `firestore:"address,omitempty"`
	PaymentToken    string      `firestore:"payment_token,omitempty"`
	IdempotencyKey  string      `firestore:"idempotency_key"`
	RequestHash     string      `firestore:"request_hash"`
	CancelReason    string      `firestore:"cancel_reason,omitempty"`
	CancelMessage   string      `firestore:"cancel_message,omitempty"`
	CancelRequested bool        `firestore:"cancel_requested"`
	Invoice         *invoiceDoc `firestore:"invoice,omitempty"`
	Committed       bool        `firestore:"committed"`
	Captured        bool        `firestore:"captured"`
	LeaseUntil      time.Time   `firestore:"lease_until"`
	LeaseOwner      string      `firestore:"lease_owner"`
	Version         int64       `firestore:"version"`
	Created         time.Time   `firestore:"create_time"`
	Updated         time.Time   `firestore:"update_time"`
	// OpenUpdated is Updated while the order is not terminal, else absent.
	OpenUpdated *time.Time `firestore:"open_update_time,omitempty"`
}

// userOrderDoc is a user's entry of an order, for List.
type userOrderDoc struct {
	Created time.Time `firestore:"create_time"`
}

// keyDoc is a used idempotency key.
type keyDoc struct {
	OrderID string `firestore:"order_id"`
}

func money(m orders.Money) moneyDoc    { return moneyDoc{Currency: m.Currency, Minor: m.Minor} }
func (m moneyDoc) money() orders.Money { return orders.Money{Currency: m.Currency, Minor: m.Minor} }

func encode(o orders.Order) (orderDoc, error) {
	d := orderDoc{
		ID: o.ID, UserID: o.UserID, State: string(o.State), Lines: make([]lineDoc, len(o.Lines)),
		Subtotal: money(o.Subtotal), Tax: money(o.Tax), Total: money(o.Total), PaymentToken: o.PaymentToken,
		IdempotencyKey: o.IdempotencyKey, RequestHash: o.RequestHash,
		CancelMessage: o.CancelMessage, CancelRequested: o.CancelRequested,
		Committed: o.Committed, Captured: o.Captured,
		LeaseUntil: o.LeaseUntil.UTC(), LeaseOwner: o.LeaseOwner, Version: o.Version,
		Created: o.Created.UTC(), Updated: o.Updated.UTC(),
	}
	for i, l := range o.Lines {
		d.Lines[i] = lineDoc{ProductID: l.ProductID, SKU: l.SKU, Name: l.Name, Quantity: int64(l.Quantity), UnitPrice: money(l.UnitPrice)}
	}
	if o.CancelReason != errorsv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
		d.CancelReason = o.CancelReason.String()
	}
	if o.Invoice != nil {
		d.Invoice = &invoiceDoc{Number: o.Invoice.Number, Object: o.Invoice.Object, Created: o.Invoice.Created.UTC()}
	}
	if o.Address != nil {
		addr, err := proto.Marshal(o.Address)
		if err != nil {
			return orderDoc{}, fmt.Errorf("encode address: %w", err)
		}
		d.Address = addr
	}
	if !o.State.Terminal() {
		open := d.Updated
		d.OpenUpdated = &open
	}
	return d, nil
}

func decode(snap *firestore.DocumentSnapshot) (orders.Order, error) {
	var d orderDoc
	if err := snap.DataTo(&d); err != nil {
		return orders.Order{}, fmt.Errorf("decode order %s: %w", snap.Ref.ID, err)
	}
	o := orders.Order{
		ID: d.ID, UserID: d.UserID, State: orders.State(d.State), Lines: make([]orders.Line, len(d.Lines)),
		Subtotal: d.Subtotal.money(), Tax: d.Tax.money(), Total: d.Total.money(), PaymentToken: d.PaymentToken,
		IdempotencyKey: d.IdempotencyKey, RequestHash: d.RequestHash,
		CancelMessage: d.CancelMessage, CancelRequested: d.CancelRequested,
		Committed: d.Committed, Captured: d.Captured,
		LeaseUntil: d.LeaseUntil.UTC(), LeaseOwner: d.LeaseOwner, Version: d.Version,
		Created: d.Created.UTC(), Updated: d.Updated.UTC(),
	}
	for i, l := range d.Lines {
		o.Lines[i] = orders.Line{ProductID: l.ProductID, SKU: l.SKU, Name: l.Name, Quantity: int32(l.Quantity), UnitPrice: l.UnitPrice.money()}
	}
	if d.CancelReason != "" {
		r, ok := errorsv1.ErrorReason_value[d.CancelReason]
		if !ok {
			return orders.Order{}, fmt.Errorf("decode order %s: unknown cancel reason %q", d.ID, d.CancelReason)
		}
		o.CancelReason = errorsv1.ErrorReason(r)
	}
	if d.Invoice != nil {
		o.Invoice = &orders.Invoice{Number: d.Invoice.Number, Object: d.Invoice.Object, Created: d.Invoice.Created.UTC()}
	}
	if d.Address != nil {
		o.Address = &commonv1.Address{}
		if err := proto.Unmarshal(d.Address, o.Address); err != nil {
			return orders.Order{}, fmt.Errorf("decode address of %s: %w", d.ID, err)
		}
	}
	return o, nil
}

// Create implements orders.Store: the order, the user's entry of it and
// its idempotency key, in one transaction.
func (s *Store) Create(ctx context.Context, o orders.Order) (orders.Order, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	o.Version = 1
	d, err := encode(o)
	if err != nil {
		return orders.Order{}, err
	}
	var existing orders.Order
	var dup bool
	create := func(ctx context.Context, tx *firestore.Transaction) error {
		existing, dup = orders.Order{}, false // fn may run more than once
		kref := keyRef(c, o.UserID, o.IdempotencyKey)
		ksnap, err := tx.Get(kref)
		switch {
		case err == nil:
			var k keyDoc
			if err := ksnap.DataTo(&k); err != nil {
				return fmt.Errorf("read idempotency key: %w", err)
			}
			osnap, err := tx.Get(orderRef(c, k.OrderID))
			if fsstore.IsNotFound(err) {
				return fmt.Errorf("idempotency key of order %s: %w", k.OrderID, orders.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("read order %s: %w", k.OrderID, err)
			}
			if existing, err = decode(osnap); err != nil {
				return err
			}
			dup = true
			return nil
		case !fsstore.IsNotFound(err):
			return fmt.Errorf("read idempotency key: %w", err)
		}
		if err := tx.Create(orderRef(c, o.ID), d); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if err := tx.Create(userOrderRef(c, o.UserID, o.ID), userOrderDoc{Created: d.Created}); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		if err := tx.Create(kref, keyDoc{OrderID: o.ID}); err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		return nil
	}
	err = fsstore.RunTransaction(ctx, c, create)
	if fsstore.IsAlreadyExists(err) {
		// A concurrent Create with the same key committed between our read
		// and our commit: read again, to find its order.
		err = fsstore.RunTransaction(ctx, c, create)
	}
	if err != nil {
		if fsstore.IsAlreadyExists(err) {
			return orders.Order{}, fmt.Errorf("insert order %s: an order with this id exists: %w", o.ID, err)
		}
		return orders.Order{}, err
	}
	if dup {
		return existing, orders.ErrDuplicateKey
	}
	o.Created, o.Updated, o.LeaseUntil = d.Created, d.Updated, d.LeaseUntil
	return o, nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	return get(ctx, c, id)
}

func get(ctx context.Context, c *firestore.Client, id string) (orders.Order, error) {
	snap, err := orderRef(c, id).Get(ctx)
	if fsstore.IsNotFound(err) {
		return orders.Order{}, orders.ErrNotFound
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("read order: %w", err)
	}
	return decode(snap)
}

// ByIdempotencyKey implements orders.Store: the key's document, then its
// order.
func (s *Store) ByIdempotencyKey(ctx context.Context, userID, key string) (orders.Order, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	snap, err := keyRef(c, userID, key).Get(ctx)
	if fsstore.IsNotFound(err) {
		return orders.Order{}, orders.ErrNotFound
	}
	if err != nil {
		return orders.Order{}, fmt.Errorf("read idempotency key: %w", err)
	}
	var k keyDoc
	if err := snap.DataTo(&k); err != nil {
		return orders.Order{}, fmt.Errorf("read idempotency key: %w", err)
	}
	return get(ctx, c, k.OrderID)
}

// List implements orders.Store: newest first, ties by id, descending. All
// orders are one query of orders; a user's are a query of the user's
// entries, then one batch read of the orders.
func (s *Store) List(ctx context.Context, userID string, after orders.Cursor, limit int) ([]orders.Order, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	coll := c.Collection(ordersColl)
	if userID != "" {
		coll = c.Collection(usersColl).Doc(docID(userID)).Collection(ordersColl)
	}
	q := coll.OrderBy("create_time", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	if after.ID != "" {
		q = q.StartAfter(after.Created.UTC(), docID(after.ID))
	}
	snaps, err := q.Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	if userID != "" {
		refs := make([]*firestore.DocumentRef, len(snaps))
		for i, snap := range snaps {
			refs[i] = c.Collection(ordersColl).Doc(snap.Ref.ID)
		}
		if snaps, err = c.GetAll(ctx, refs); err != nil {
			return nil, fmt.Errorf("list orders: %w", err)
		}
	}
	out := make([]orders.Order, 0, len(snaps))
	for _, snap := range snaps {
		if !snap.Exists() {
			return nil, fmt.Errorf("list orders: order %s of user %s is missing", snap.Ref.ID, userID)
		}
		o, err := decode(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Unfinished implements orders.Store (see the package doc for its bound).
func (s *Store) Unfinished(ctx context.Context, before time.Time, limit int) ([]string, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	base := c.Collection(ordersColl).Where(openField, "<=", before.UTC()).
		OrderBy(openField, firestore.Asc).OrderBy(firestore.DocumentID, firestore.Asc)
	var ids []string
	var last *firestore.DocumentSnapshot
	for scanned := 0; len(ids) < limit && scanned < unfinishedScan; {
		q := base.Limit(min(unfinishedPage, unfinishedScan-scanned))
		if last != nil {
			q = q.StartAfter(last)
		}
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return nil, fmt.Errorf("find unfinished orders: %w", err)
		}
		for _, snap := range snaps {
			var d orderDoc
			if err := snap.DataTo(&d); err != nil {
				return nil, fmt.Errorf("decode order %s: %w", snap.Ref.ID, err)
			}
			if d.LeaseUntil.After(now) {
				continue // a runner drives it now
			}
			ids = append(ids, d.ID)
			if len(ids) == limit {
				break
			}
		}
		scanned += len(snaps)
		if len(snaps) < unfinishedPage {
			break // nothing more
		}
		last = snaps[len(snaps)-1]
	}
	return ids, nil
}

// Update implements orders.Store. A move to CONFIRMED or CANCELLED records
// order.confirmed or order.cancelled in the same transaction. fn runs on a
// fresh read each time the transaction runs.
func (s *Store) Update(ctx context.Context, id string, fn func(*orders.Order) error) (orders.Order, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return orders.Order{}, err
	}
	var out orders.Order
	err = fsstore.RunTransaction(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
		out = orders.Order{} // fn may run more than once
		ref := orderRef(c, id)
		snap, err := tx.Get(ref)
		if fsstore.IsNotFound(err) {
			return orders.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read order: %w", err)
		}
		o, err := decode(snap)
		if err != nil {
			return err
		}
		before := o.State
		if err := fn(&o); err != nil {
			if errors.Is(err, orders.ErrUnchanged) {
				// The stored order, as read: fn may have touched o.
				out, err = decode(snap)
				if err != nil {
					return err
				}
			}
			return err
		}
		o.Version++
		d, err := encode(o)
		if err != nil {
			return err
		}
		if err := tx.Set(ref, d); err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		if o.State != before {
			if err := recordEvent(ctx, c, tx, o); err != nil {
				return err
			}
		}
		out = o
		return nil
	})
	if errors.Is(err, orders.ErrUnchanged) {
		return out, nil
	}
	if err != nil {
		return orders.Order{}, err
	}
	return out, nil
}

// recordEvent appends the event of a move to a terminal state.
func recordEvent(ctx context.Context, c *firestore.Client, tx *firestore.Transaction, o orders.Order) error {
	e := outbox.Event{Source: Source, Subject: o.ID, OrderingKey: o.ID, Time: o.Updated}
	switch o.State {
	case orders.Confirmed:
		e.ID, e.Type = o.ID+"-confirmed", outbox.TypeOrderConfirmed
		e.Data = &eventsv1.OrderConfirmed{
			OrderId: o.ID, UserId: o.UserID,
			Total:       &commonv1.Money{CurrencyCode: o.Total.Currency, AmountMinor: o.Total.Minor},
			ConfirmTime: timestamppb.New(o.Updated),
		}
	case orders.Cancelled:
		e.ID, e.Type = o.ID+"-cancelled", outbox.TypeOrderCancelled
		e.Data = &eventsv1.OrderCancelled{OrderId: o.ID, UserId: o.UserID, Reason: o.CancelReason, CancelTime: timestamppb.New(o.Updated)}
	default:
		return nil
	}
	_, err := fsoutbox.Append(ctx, c, tx, e)
	return err
}
