package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records how a helper ended the test it was given.
type fakeTB struct {
	testing.TB
	outcome string // "fatal", "skip" or "" when the helper returned.
	msg     string
}

func (f *fakeTB) Helper()                         {}
func (f *fakeTB) Logf(format string, args ...any) {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.outcome, f.msg = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Skip(args ...any) {
	f.outcome, f.msg = "skip", fmt.Sprint(args...)
	runtime.Goexit()
}

// run calls fn with a fakeTB on its own goroutine, as Fatalf and Skip end it.
func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

func TestHostWithoutMain(t *testing.T) {
	r := &registry{slots: map[string]*slot{}}
	f := &fakeTB{TB: t}
	f.run(func(tb testing.TB) { r.host(tb, pubsubEmulator) })
	const want = "func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }"
	if f.outcome != "fatal" || !strings.Contains(f.msg, want) {
		t.Errorf("host without Main: %s %q, want fatal containing %q", f.outcome, f.msg, want)
	}
	if len(r.slots) != 0 {
		t.Errorf("host without Main started %d emulators, want 0", len(r.slots))
	}
}

func TestUnavailable(t *testing.T) {
	const msg = "Pub/Sub emulator not available: gcloud not on PATH; set up gcloud or run in CI"
	tests := []struct {
		name, env, want string
	}{
		{name: "unset", env: "", want: "skip"},
		{name: "zero", env: "0", want: "skip"},
		{name: "required", env: "1", want: "fatal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireEmulatorsEnv, tt.env)
			f := &fakeTB{TB: t}
			f.run(func(tb testing.TB) { unavailable(tb, "Pub/Sub", "gcloud not on PATH") })
			if f.outcome != tt.want || !strings.HasPrefix(f.msg, msg) {
				t.Errorf("unavailable with %s=%q: %s %q, want %s %q", RequireEmulatorsEnv, tt.env, f.outcome, f.msg, tt.want, msg)
			}
		})
	}
}

// writeExecutable creates an executable file at path.
func writeExecutable(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindLauncher(t *testing.T) {
	// A fake SDK reached through a symlinked gcloud, with a fake java.
	dir := t.TempDir()
	sdk := filepath.Join(dir, "sdk")
	writeExecutable(t, filepath.Join(sdk, "bin", "gcloud"))
	writeExecutable(t, filepath.Join(sdk, "platform", "fake", "launcher"))
	bin := filepath.Join(dir, "bin")
	writeExecutable(t, filepath.Join(bin, "java"))
	if err := os.Symlink(filepath.Join(sdk, "bin", "gcloud"), filepath.Join(bin, "gcloud")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAVA_HOME", "")

	tests := []struct {
		name, path, launcher string
		want                 string // The launcher found, or the unavailable reason's start.
	}{
		{name: "found beside gcloud", path: bin, launcher: "platform/fake/launcher", want: filepath.Join(sdk, "platform/fake/launcher")},
		{name: "no gcloud", path: filepath.Join(dir, "empty"), launcher: "platform/fake/launcher", want: "gcloud not on PATH"},
		{name: "no launcher", path: bin, launcher: "platform/missing/launcher", want: "no executable emulator launcher at " + filepath.Join(sdk, "platform/missing/launcher")},
		{name: "no java", path: filepath.Join(sdk, "bin"), launcher: "platform/fake/launcher", want: "java not on PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			got, err := findLauncher(emulatorSpec{launcher: tt.launcher})
			if u, ok := err.(*unavailableError); ok {
				got = u.reason
			} else if err != nil {
				t.Fatalf("findLauncher(%q) error %v, want an *unavailableError", tt.launcher, err)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("findLauncher(%q) with PATH=%s = %q, want %q", tt.launcher, tt.path, got, tt.want)
			}
		})
	}
}

func TestProjectID(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
		want string
	}{
		{name: "TestStore", seq: 1, want: "test-teststore-1"},
		{name: "TestStore/Reserve_twice#01", seq: 12, want: "test-teststore-reserve-twic-12"},
		{name: "TestOrderStoreContract/firestore/concurrent", seq: 3, want: "test-testorderstorecontract-3"},
		{name: "Test__X__", seq: 7, want: "test-test-x-7"},
		{name: "/_/", seq: 5, want: "test-5"},
		{name: "TestÄrger", seq: 99999999999, want: "test-test-rger-99999999999"},
	}
	valid := regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	for _, tt := range tests {
		got := projectID(tt.name, tt.seq)
		if got != tt.want {
			t.Errorf("projectID(%q, %d) = %q, want %q", tt.name, tt.seq, got, tt.want)
		}
		if !valid.MatchString(got) {
			t.Errorf("projectID(%q, %d) = %q, not a valid project id", tt.name, tt.seq, got)
		}
	}
	if a, b := ProjectID(t), ProjectID(t); a == b {
		t.Errorf("ProjectID called twice = %q both times, want different ids", a)
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	b.Write([]byte("start\n"))
	b.Write([]byte(strings.Repeat("x", outputLimit)))
	b.Write([]byte("end\n"))
	got := b.String()
	wantPrefix := "[10 earlier bytes dropped]\n"
	if !strings.HasPrefix(got, wantPrefix) || !strings.HasSuffix(got, "xend\n") || len(got) != len(wantPrefix)+outputLimit {
		t.Errorf("tailBuffer after %d bytes: len %d, starts %q, want the last %d bytes after %q",
			outputLimit+10, len(got), got[:min(len(got), 40)], outputLimit, wantPrefix)
	}
}
