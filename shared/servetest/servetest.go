// Package servetest holds test helpers shared by the deployables' tests.
package servetest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/apperr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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

// WantErr fails the test unless err is a status error with code and the
// ErrorInfo reason.
func WantErr(t testing.TB, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || apperr.Reason(err) != reason {
		t.Fatalf("error = %v (reason %q), want %v with reason %q", err, apperr.Reason(err), code, reason)
	}
}

// Serve runs a deployable's Run on a new loopback listener until the test
// ends (or stop is called), and fails the test if Run returns an error.
func Serve(t testing.TB, run func(context.Context, net.Listener) error) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, lis) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run on %s = %v", lis.Addr(), err)
			}
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// Conn returns a plaintext client connection to addr, closed when the test
// ends.
func Conn(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}
