package fsstore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/shared/store/fsstore"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestConnFailed opens without a project: the failure is reported by Err
// once Done is closed, by Client, and Close has nothing to close.
func TestConnFailed(t *testing.T) {
	c := fsstore.OpenInBackground(context.Background(), "", "db")
	<-c.Done()
	if err := c.Err(); err == nil {
		t.Fatal("Err() = nil, want the missing project")
	}
	if _, err := c.Client(context.Background()); err == nil {
		t.Error("Client() = nil error, want the missing project")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
}

func openConn(t *testing.T) *firestore.Client {
	t.Helper()
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	conn := fsstore.OpenInBackground(context.Background(), testenv.ProjectID(t), "shopfn-fsstore")
	t.Cleanup(func() { conn.Close() })
	c, err := conn.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Err(); err != nil {
		t.Fatalf("Err() = %v after Client succeeded", err)
	}
	return c
}

// TestRunTransaction checks how a transaction's failure reaches the caller.
func TestRunTransaction(t *testing.T) {
	c := openConn(t)
	ref := c.Collection("things").Doc("one")

	t.Run("commits", func(t *testing.T) {
		err := fsstore.RunTransaction(context.Background(), c, func(ctx context.Context, tx *firestore.Transaction) error {
			return tx.Set(ref, map[string]any{"n": 1})
		})
		if err != nil {
			t.Fatalf("RunTransaction = %v, want nil", err)
		}
	})

	t.Run("ended context begins nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		err := fsstore.RunTransaction(ctx, c, func(context.Context, *firestore.Transaction) error {
			ran = true
			return nil
		})
		if err != context.Canceled || ran {
			t.Errorf("RunTransaction(ended ctx) = %v, ran %v; want context.Canceled, not run", err, ran)
		}
	})

	t.Run("fn's error as it is", func(t *testing.T) {
		want := errors.New("no")
		err := fsstore.RunTransaction(context.Background(), c, func(context.Context, *firestore.Transaction) error { return want })
		if err != want {
			t.Errorf("RunTransaction = %v, want %v", err, want)
		}
	})

	t.Run("deadline during the transaction", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := fsstore.RunTransaction(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
			<-ctx.Done()
			_, err := tx.Get(ref)
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RunTransaction = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("conflict outlasting the deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := fsstore.RunTransaction(ctx, c, func(ctx context.Context, tx *firestore.Transaction) error {
			return status.Error(codes.Aborted, "conflict")
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RunTransaction = %v, want context.DeadlineExceeded", err)
		}
	})
}
