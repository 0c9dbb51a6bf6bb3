package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shopfn/shopfn/shared/store"
)

func TestStrings(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (id TEXT, n INTEGER); INSERT INTO t VALUES ('b', 2), ('a', 1), (NULL, 3)`); err != nil {
		t.Fatal(err)
	}
	got, err := store.Strings(db.QueryContext(ctx, `SELECT id FROM t WHERE id IS NOT NULL ORDER BY id`))
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Strings = %v, %v; want [a b]", got, err)
	}
	if got, err := store.Strings(db.QueryContext(ctx, `SELECT id FROM t WHERE n > 10`)); err != nil || len(got) != 0 {
		t.Errorf("Strings(no rows) = %v, %v; want none", got, err)
	}
	if _, err := store.Strings(db.QueryContext(ctx, `SELECT id FROM t`)); err == nil {
		t.Error("Strings(a NULL) = nil error, want the scan's")
	}
	if _, err := store.Strings(db.QueryContext(ctx, `SELECT nope FROM t`)); err == nil {
		t.Error("Strings(a bad query) = nil error, want the query's")
	}
	wantErr := errors.New("boom")
	if _, err := store.Strings(nil, wantErr); !errors.Is(err, wantErr) {
		t.Errorf("Strings(nil, err) = %v, want err", err)
	}
}
