// Package testenv starts the Google Cloud emulators (Pub/Sub, Firestore) for
// tests.
//
// Each emulator is started at most once per test binary, on a free loopback
// port, the first time a test asks for it, and is shared by every test of the
// binary. Tests isolate their data by using their own project id (see
// [ProjectID]) or by clearing it (see [ClearFirestore]).
//
// A package that uses an emulator must run its tests through [Main]:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// [Main] stops every emulator the binary started once the tests are done.
// [PubSub] and [Firestore] fail the test with a message saying so when the
// binary does not run through [Main], rather than start an emulator that
// nothing would stop in an orderly way.
//
// If the test binary dies without reaching the end of [Main] (a panicking
// test, a -timeout, SIGKILL), each emulator still goes away: it runs under a
// small /bin/sh watchdog that reads a pipe only the test binary holds open;
// when the kernel closes that pipe at the binary's exit, the watchdog sends
// SIGTERM and then SIGKILL to the emulator's process group. What can still
// leave an emulator behind is the watchdog itself being killed (OOM killer,
// kill -9 of its pid) while the emulator lives.
//
// When gcloud is not on PATH, or the emulator is not installed, the test is
// skipped, unless the environment variable SHOPFN_REQUIRE_EMULATORS is 1 (set
// it in CI): then it fails. An emulator that is installed but does not start
// always fails the test.
//
// The helpers set nothing global: they return the emulator's host:port.
// [SetPubSubEnv] and [SetFirestoreEnv] export it for the client libraries that
// read PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST; [PubSubClientOptions]
// configures a Pub/Sub client without the environment, for parallel tests.
//
// The package only works on unix systems (it uses process groups); elsewhere
// the emulators count as not available.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// RequireEmulatorsEnv names the environment variable that turns a missing
// emulator from a skipped test into a failed one when it is "1". CI sets it so
// that emulator tests can never be skipped silently.
const RequireEmulatorsEnv = "SHOPFN_REQUIRE_EMULATORS"

const (
	// projectIDMaxLen is the longest project id Google Cloud accepts; ids
	// made by ProjectID stay valid so they work against the real services.
	projectIDMaxLen = 30

	// clearTimeout bounds the HTTP call that clears the Firestore emulator:
	// it answers in milliseconds, so ten seconds only means it is stuck.
	clearTimeout = 10 * time.Second
)

// emulators is the once-per-binary registry of started emulators: the only
// package-level state, guarded by its mutex.
var emulators = registry{slots: map[string]*slot{}}

// registry records the emulators this test binary started.
type registry struct {
	mu         sync.Mutex
	mainActive bool // Main is running the tests.
	stopped    bool // Main has stopped the emulators.
	slots      map[string]*slot

	projectSeq atomic.Uint64 // last number handed out by ProjectID.
}

// slot is one emulator: started by the first test that asks for it.
type slot struct {
	done    chan struct{} // closed when the start attempt is over.
	host    string
	proc    *process
	readyIn time.Duration
	err     error
}

// Main runs the tests of m and then stops every emulator this binary
// started, and returns the exit code for os.Exit. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// If an emulator cannot be stopped, Main reports it on stderr and returns a
// non-zero code.
func Main(m *testing.M) int {
	emulators.mu.Lock()
	emulators.mainActive = true
	emulators.mu.Unlock()

	code := m.Run()
	if err := emulators.stopAll(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// PubSub returns the host:port of the Pub/Sub emulator of this test binary,
// starting it on first use. It skips or fails t when the emulator is not
// available (see the package documentation) and fails t when the emulator
// does not start.
func PubSub(t testing.TB) string {
	t.Helper()
	return emulators.host(t, pubsubEmulator)
}

// Firestore returns the host:port of the Firestore emulator (native mode) of
// this test binary, starting it on first use. It skips or fails t like
// [PubSub].
func Firestore(t testing.TB) string {
	t.Helper()
	return emulators.host(t, firestoreEmulator)
}

// host returns the address of the emulator described by spec, starting it
// if this is the first request for it.
func (r *registry) host(t testing.TB, spec emulatorSpec) string {
	t.Helper()
	r.mu.Lock()
	if !r.mainActive {
		r.mu.Unlock()
		t.Fatalf("testenv: %s emulator requested, but this test binary does not run through testenv.Main, "+
			"so nothing would stop the emulator; add to the package's tests:\n"+
			"\tfunc TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }", spec.name)
	}
	if r.stopped {
		r.mu.Unlock()
		t.Fatalf("testenv: %s emulator requested after testenv.Main stopped the emulators", spec.name)
	}
	s, started := r.slots[spec.name]
	if !started {
		s = &slot{done: make(chan struct{})}
		r.slots[spec.name] = s
	}
	r.mu.Unlock()

	if !started {
		s.host, s.proc, s.readyIn, s.err = start(spec)
		close(s.done)
		if s.err == nil {
			t.Logf("testenv: %s emulator ready on %s in %v", spec.name, s.host, s.readyIn.Round(time.Millisecond))
		}
	} else {
		<-s.done
	}

	if s.err != nil {
		var u *unavailableError
		if errors.As(s.err, &u) {
			unavailable(t, spec.name, u.reason)
		}
		t.Fatalf("testenv: %v", s.err)
	}
	return s.host
}

// stopAll stops every emulator the registry started, waiting for starts
// still in progress, and refuses later requests.
func (r *registry) stopAll() error {
	r.mu.Lock()
	r.stopped = true
	slots := make([]*slot, 0, len(r.slots))
	for _, s := range r.slots {
		slots = append(slots, s)
	}
	r.mu.Unlock()

	// Stop them concurrently: each may wait out its SIGTERM grace.
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, s := range slots {
		wg.Go(func() {
			<-s.done
			if s.proc != nil {
				errs[i] = s.proc.stop()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// unavailableError reports that an emulator cannot be run on this machine.
type unavailableError struct {
	reason string
}

func (e *unavailableError) Error() string { return e.reason }

// unavailable skips t because the named emulator is not available for the
// given reason, or fails t instead when RequireEmulatorsEnv is "1". It is the
// only place that makes this decision.
func unavailable(t testing.TB, name, reason string) {
	t.Helper()
	msg := fmt.Sprintf("%s emulator not available: %s; set up gcloud or run in CI", name, reason)
	if os.Getenv(RequireEmulatorsEnv) == "1" {
		t.Fatalf("%s (%s=1 requires the emulators)", msg, RequireEmulatorsEnv)
	}
	t.Skip(msg)
}

// ProjectID returns a project id that no other test of this binary uses, so
// a test isolates its emulator data without clearing anything. Each call
// returns a new id, made of "test-", as much of t's name as fits and a
// sequence number; it is a valid Google Cloud project id (lowercase letters,
// digits and hyphens, at most 30 characters).
func ProjectID(t testing.TB) string {
	return projectID(t.Name(), emulators.projectSeq.Add(1))
}

// projectID builds the id ProjectID returns for a test name and a sequence
// number.
func projectID(testName string, seq uint64) string {
	var b strings.Builder
	hyphen := true // Collapse runs of other characters into one hyphen.
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		case !hyphen:
			b.WriteByte('-')
			hyphen = true
		}
	}
	const prefix = "test-"
	suffix := "-" + strconv.FormatUint(seq, 10)
	name := b.String()
	if room := projectIDMaxLen - len(prefix) - len(suffix); len(name) > room {
		name = name[:max(room, 0)]
	}
	name = strings.Trim(name, "-")
	if name == "" {
		return strings.TrimSuffix(prefix, "-") + suffix
	}
	return prefix + name + suffix
}

// SetPubSubEnv sets PUBSUB_EMULATOR_HOST to host for the duration of t, so
// that pubsub.NewClient connects to the emulator. It uses t.Setenv, which
// panics in a test that called t.Parallel (or whose parent did): a parallel
// test passes [PubSubClientOptions] to the client instead.
func SetPubSubEnv(t testing.TB, host string) {
	t.Helper()
	t.Setenv("PUBSUB_EMULATOR_HOST", host)
}

// SetFirestoreEnv sets FIRESTORE_EMULATOR_HOST to host for the duration of t,
// so that firestore.NewClient connects to the emulator (with the admin
// credentials the emulator expects from it). Like [SetPubSubEnv], it cannot be
// used in a parallel test.
func SetFirestoreEnv(t testing.TB, host string) {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
}

// PubSubClientOptions returns the options that connect a
// cloud.google.com/go/pubsub/v2 client to the emulator at host without
// credentials, as PUBSUB_EMULATOR_HOST would, but without touching the
// environment; they take precedence over PUBSUB_EMULATOR_HOST.
func PubSubClientOptions(host string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled(),
	}
}

// ClearFirestore deletes every document of the (default) database of project
// in the Firestore emulator at host, and fails t if it cannot.
func ClearFirestore(t testing.TB, host, project string) {
	t.Helper()
	ClearFirestoreDatabase(t, host, project, "(default)")
}

// ClearFirestoreDatabase deletes every document of the named database of
// project in the Firestore emulator at host, and fails t if it cannot. The
// emulator keeps each named database apart, so clearing one leaves the others
// untouched.
func ClearFirestoreDatabase(t testing.TB, host, project, database string) {
	t.Helper()
	// Not t.Context(): it is already canceled when t.Cleanup functions run.
	ctx, cancel := context.WithTimeout(context.Background(), clearTimeout)
	defer cancel()
	u := fmt.Sprintf("http://%s/emulator/v1/projects/%s/databases/%s/documents",
		host, url.PathEscape(project), url.PathEscape(database))
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		t.Fatalf("testenv: clear Firestore: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: clear Firestore: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: clear Firestore: DELETE %s: %s: %s", u, resp.Status, body)
	}
}
