package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

func TestAppendReadMarkSent(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "s.db"), outbox.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := outbox.Event{
		Type: outbox.TypeOrderConfirmed, Source: "//shopfn/order", Subject: "ord_1", OrderingKey: "ord_1",
		Data: &eventsv1.OrderConfirmed{OrderId: "ord_1", Total: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 1234}},
	}
	var id string
	if err := store.InTx(ctx, db, func(tx *sql.Tx) (err error) { id, err = outbox.Append(ctx, tx, ev); return err }); err != nil {
		t.Fatal(err)
	}
	// A rolled-back transaction leaves no event.
	boom := errors.New("boom")
	if err := store.InTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := outbox.Append(ctx, tx, ev); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	rows, err := outbox.Unsent(ctx, db, 10)
	if err != nil || len(rows) != 1 || rows[0].ID != id || rows[0].OrderingKey != "ord_1" || time.Since(rows[0].Time) > time.Minute {
		t.Fatalf("Unsent = %+v, %v; want the one committed event", rows, err)
	}
	var got eventsv1.OrderConfirmed
	if err := rows[0].Decode(&got); err != nil || got.GetTotal().GetAmountMinor() != 1234 {
		t.Fatalf("Decode = %v, %v", &got, err)
	}
	if err := outbox.MarkSent(ctx, db, id); err != nil {
		t.Fatal(err)
	}
	if rows, _ := outbox.Unsent(ctx, db, 10); len(rows) != 0 {
		t.Errorf("Unsent after MarkSent = %d rows, want 0", len(rows))
	}
	all, _ := outbox.All(ctx, db)
	if len(all) != 1 || !all[0].Sent {
		t.Errorf("All = %+v, want one sent event", all)
	}
	// A deterministic id makes a second recording of the same change fail.
	ev.ID = "evt_fixed"
	for i, want := range []bool{true, false} {
		err := store.InTx(ctx, db, func(tx *sql.Tx) error { _, err := outbox.Append(ctx, tx, ev); return err })
		if (err == nil) != want {
			t.Errorf("Append #%d of id evt_fixed = %v", i+1, err)
		}
	}
}

func TestCommittedSignalAndPrune(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "s.db"), outbox.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []string
	for i := range 3 {
		err := store.InTx(ctx, db, func(tx *sql.Tx) error {
			id, err := outbox.Append(ctx, tx, outbox.Event{Type: outbox.TypeLowStock, Source: "//shopfn/inventory",
				Subject: "sku", Data: &eventsv1.LowStock{Sku: "sku", Available: int64(i)}})
			ids = append(ids, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-outbox.Committed(db):
	default:
		t.Fatal("no Committed signal after three commits")
	}
	select {
	case <-outbox.Committed(db):
		t.Fatal("signals did not coalesce")
	default:
	}
	if err := outbox.MarkSent(ctx, db, ids[:2]...); err != nil {
		t.Fatal(err)
	}
	if rows, _ := outbox.Unsent(ctx, db, 10); len(rows) != 1 || rows[0].ID != ids[2] {
		t.Fatalf("Unsent after marking two = %+v, want %s", rows, ids[2])
	}
	if n, err := outbox.Prune(ctx, db, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("Prune(an hour ago) = %d, %v; want 0, nil", n, err)
	}
	if n, err := outbox.Prune(ctx, db, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Errorf("Prune(now) = %d, %v; want 2 (the sent ones), nil", n, err)
	}
	if all, _ := outbox.All(ctx, db); len(all) != 1 || all[0].ID != ids[2] {
		t.Errorf("All after Prune = %+v, want only the unsent event", all)
	}
}
