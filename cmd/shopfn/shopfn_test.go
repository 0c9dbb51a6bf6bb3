package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/testenv"
)

// TestMain lets the test binary stand in for the shopfn executable when
// `shopfn dev` starts its functions as child processes.
func TestMain(m *testing.M) {
	runChildFunction()
	os.Exit(testenv.Main(m))
}

// startDev runs `shopfn dev` in-process on free ports and returns the
// endpoints it printed, by deployable name.
func startDev(t *testing.T) map[string]string {
	t.Helper()
	return startDevIn(t, t.TempDir())
}

// startDevIn is startDev with its data directory in dataDir.
func startDevIn(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	ports := make([]int, len(deployables()))
	go func() {
		done <- runDev(ctx, &out, slog.New(slog.DiscardHandler), "127.0.0.1",
			devOptions{dataDir: dataDir, adminEmails: []string{"admin@shopfn.local"}}, ports)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runDev = %v", err)
		}
	})
	row := regexp.MustCompile(`(?m)^\s+(\w+)\s+grpc\s+(\S+)\s+grpcurl -plaintext (\S+) list$`)
	fnRow := regexp.MustCompile(`(?m)^\s+(\w+)\s+(?:function|http)\s+(http://\S+)\s+(?:pushed|curl)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := row.FindAllStringSubmatch(out.String(), -1); len(m) == len(grpcRunners) {
			eps := map[string]string{}
			for _, r := range m {
				if r[2] != r[3] {
					t.Fatalf("endpoint %s and its grpcurl line %s differ", r[2], r[3])
				}
				eps[r[1]] = r[2]
			}
			for _, r := range fnRow.FindAllStringSubmatch(out.String(), -1) {
				eps[r[1]] = r[2]
			}
			return eps
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("shopfn dev printed no endpoint table:\n%s", out.String())
	return nil
}

// shopfn runs the CLI with args and returns its standard output.
func shopfn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var stdout, stderr bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	return stdout.String(), err
}

func TestDevAndUserCommands(t *testing.T) {
	t.Setenv("SHOPFN_CONFIG_DIR", t.TempDir())
	t.Setenv("SHOPFN_PASSWORD", "")
	eps := startDev(t)
	addr := eps["user"]
	if addr == "" {
		t.Fatalf("no user endpoint in %v", eps)
	}

	out, err := shopfn(t, "", "user", "register", "--addr", addr, "--email", "Ann@Example.com", "--name", "Ann", "--password", "correct horse battery")
	if err != nil {
		t.Fatalf("user register = %v", err)
	}
	var registered struct{ ID, Email, Role string }
	if err := json.Unmarshal([]byte(out), &registered); err != nil || registered.Email != "ann@example.com" || registered.Role != "ROLE_CUSTOMER" {
		t.Fatalf("user register printed %q (%v)", out, err)
	}

	// The password may come on standard input.
	if _, err := shopfn(t, "correct horse battery\n", "user", "login", "--addr", addr, "--email", "ann@example.com"); err != nil {
		t.Fatalf("user login = %v", err)
	}
	dir := os.Getenv("SHOPFN_CONFIG_DIR")
	if info, err := os.Stat(filepath.Join(dir, "session.json")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v, want mode 0600", err, info)
	}

	out, err = shopfn(t, "", "user", "get", "--addr", addr)
	if err != nil || !strings.Contains(out, registered.ID) {
		t.Fatalf("user get = %q, %v; want the logged-in user", out, err)
	}
	out, err = shopfn(t, "", "user", "update", "--addr", addr, "--name", "Ann B.")
	if err != nil || !strings.Contains(out, `"Ann B."`) {
		t.Fatalf("user update = %q, %v", out, err)
	}

	_, err = shopfn(t, "", "user", "get", "--addr", addr, "usr_someone_else")
	if err == nil || !strings.Contains(explain(err), "USER_NOT_FOUND") {
		t.Errorf("user get of another user = %v, want NotFound with USER_NOT_FOUND", err)
	}
	_, err = shopfn(t, "", "user", "register", "--addr", addr, "--email", "ann@example.com", "--name", "Ann", "--password", "correct horse battery")
	if got := explain(err); !strings.Contains(got, "AlreadyExists") || !strings.Contains(got, "EMAIL_TAKEN") {
		t.Errorf("second register explained as %q, want AlreadyExists and EMAIL_TAKEN", got)
	}
	_, err = shopfn(t, "", "user", "get", "--addr", "127.0.0.1:1")
	if err == nil {
		t.Errorf("user get against another address = nil error, want not logged in")
	}
}

func TestKeysPrintsUsableSettings(t *testing.T) {
	out, err := shopfn(t, "", "keys")
	if err != nil || !regexp.MustCompile(`^SHOPFN_JWT_SIGNING_KEY=\S{88}\nSHOPFN_JWT_PUBLIC_KEYS=\S{44}\n$`).MatchString(out) {
		t.Errorf("keys = %q, %v", out, err)
	}
}

func TestResetRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "thesis.docx"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := resetDataDir(dir); err == nil {
		t.Fatal("resetDataDir on a folder with a foreign file = nil error")
	}
	if _, err := os.Stat(filepath.Join(dir, "thesis.docx")); err != nil {
		t.Fatalf("the foreign file is gone: %v", err)
	}
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "user.db"), nil, 0o600)
	if err := resetDataDir(data); err != nil {
		t.Fatalf("resetDataDir(data dir) = %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir still exists after reset: %v", err)
	}
}

// syncBuffer is an io.Writer safe for concurrent use whose contents can be
// read while it is written (the endpoints table, in tests).
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
