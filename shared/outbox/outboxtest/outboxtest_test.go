package outboxtest_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/outbox/fsoutbox"
	"github.com/shopfn/shopfn/shared/outbox/outboxtest"
	"github.com/shopfn/shopfn/shared/store"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestSQLite(t *testing.T) {
	outboxtest.Run(t, func(t *testing.T) outboxtest.Harness {
		db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "o.db"), outbox.Migrations())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return outboxtest.Harness{
			Store: outbox.SQLite(db),
			Append: func(ctx context.Context, e outbox.Event) (id string, err error) {
				err = store.InTx(ctx, db, func(tx *sql.Tx) error {
					id, err = outbox.Append(ctx, tx, e)
					return err
				})
				return id, err
			},
		}
	})
}

func TestFirestore(t *testing.T) {
	host := testenv.Firestore(t)
	testenv.SetFirestoreEnv(t, host)
	outboxtest.Run(t, func(t *testing.T) outboxtest.Harness {
		ctx, cancel := context.WithCancel(context.Background())
		c, err := firestore.NewClientWithDatabase(ctx, testenv.ProjectID(t), "outbox")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			c.Close()
		})
		return outboxtest.Harness{
			Store: fsoutbox.New(ctx, c),
			Append: func(ctx context.Context, e outbox.Event) (id string, err error) {
				err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
					id, err = fsoutbox.Append(ctx, c, tx, e)
					return err
				})
				return id, err
			},
		}
	})
}
