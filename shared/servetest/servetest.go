// Package servetest holds test helpers shared by the deployables' tests.
package servetest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// UnopenablePath returns a path under a regular file in a new temporary
// directory: nothing can ever be created there.
func UnopenablePath(t testing.TB, name string) string {
	t.Helper()
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(blocker, name)
}

// failTimeout bounds how long a deployable may take to notice that it cannot
// start; it notices in milliseconds, so this only catches one that never
// does.
const failTimeout = 30 * time.Second

// ExpectRunFails runs a deployable's Run on a loopback listener and fails
// the test unless it returns an error: a deployable that cannot open its
// store must stop, not serve.
func ExpectRunFails(t testing.TB, run func(context.Context, net.Listener) error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run = nil, want an error")
		}
	case <-time.After(failTimeout):
		t.Fatal("Run kept serving when it should have stopped")
	}
}
