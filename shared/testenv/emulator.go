package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
)

const (
	// defaultSDKRoot is where Debian's google-cloud-cli package installs the
	// SDK; it is tried when the SDK root derived from gcloud lacks an emulator.
	defaultSDKRoot = "/usr/lib/google-cloud-sdk"

	// startTimeout bounds the start of one emulator, retries included. A cold
	// JVM start takes ~1.5 s here; a CI machine running many test binaries at
	// once can be ten times slower, and the timeout only costs time when
	// something is broken.
	startTimeout = 60 * time.Second

	// startAttempts is how many free ports are tried. The port is picked by
	// binding port 0 and closing it, so another process can take it before
	// the emulator binds it; the emulator then exits, and a new port is tried.
	startAttempts = 3

	// pollInterval paces the readiness checks: the emulators are ready in
	// ~1.5 s, so 50 ms adds at most a few percent to the start while keeping
	// the polling cheap.
	pollInterval = 50 * time.Millisecond

	// probeTimeout bounds one readiness request, so that a request stuck on
	// a half-started emulator is retried instead of using up startTimeout.
	probeTimeout = 5 * time.Second

	// readinessProject is the project the Pub/Sub readiness check lists the
	// topics of; no test uses it.
	readinessProject = "testenv-readiness"
)

// emulatorSpec describes how to run and probe one emulator.
type emulatorSpec struct {
	name     string // For messages: "Pub/Sub".
	launcher string // Launcher script, relative to the SDK root.
	args     func(host, port string) []string
	// probe makes one request that succeeds only once the emulator serves.
	probe func(ctx context.Context, addr string) error
}

// pubsubEmulator runs the Pub/Sub emulator's launcher directly, which is
// faster than `gcloud beta emulators pubsub start`.
var pubsubEmulator = emulatorSpec{
	name:     "Pub/Sub",
	launcher: "platform/pubsub-emulator/bin/cloud-pubsub-emulator",
	args: func(host, port string) []string {
		return []string{"--host=" + host, "--port=" + port}
	},
	probe: probePubSub,
}

// firestoreEmulator runs the Firestore emulator in native mode.
var firestoreEmulator = emulatorSpec{
	name:     "Firestore",
	launcher: "platform/cloud-firestore-emulator/cloud_firestore_emulator",
	args: func(host, port string) []string {
		return []string{"start", "--host=" + host, "--port=" + port, "--database-mode=firestore-native"}
	},
	probe: probeFirestore,
}

// errExited reports that an emulator exited before it was ready.
var errExited = errors.New("emulator exited before it was ready")

// start starts the emulator of spec and waits until it serves. It returns
// its host:port, its process and how long the start took.
func start(spec emulatorSpec) (string, *process, time.Duration, error) {
	launcher, err := findLauncher(spec)
	if err != nil {
		return "", nil, 0, err
	}
	began := time.Now()
	deadline := began.Add(startTimeout)
	for attempt := 1; ; attempt++ {
		host, port, err := freeLoopbackPort()
		if err != nil {
			return "", nil, 0, fmt.Errorf("%s emulator: %w", spec.name, err)
		}
		addr := net.JoinHostPort(host, port)
		p, err := launch(launcher, spec.args(host, port))
		if err != nil {
			return "", nil, 0, err
		}
		err = waitReady(p, addr, spec, deadline)
		if err == nil {
			return addr, p, time.Since(began), nil
		}
		if stopErr := p.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		if errors.Is(err, errExited) && attempt < startAttempts && time.Now().Before(deadline) {
			continue
		}
		return "", nil, 0, fmt.Errorf("%s emulator (%s) did not start (attempt %d of %d): %w\n"+
			"--- emulator output ---\n%s\n--- end of emulator output ---",
			spec.name, launcher, attempt, startAttempts, err, p.output())
	}
}

// findLauncher returns the path of the emulator's launcher in the SDK that
// gcloud on PATH belongs to, or an *unavailableError.
func findLauncher(spec emulatorSpec) (string, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return "", &unavailableError{reason: "gcloud not on PATH"}
	}
	// gcloud is <root>/bin/gcloud, often reached through a symlink such as
	// /usr/bin/gcloud or Homebrew's bin directory.
	var roots []string
	if real, err := filepath.EvalSymlinks(gcloud); err == nil {
		roots = append(roots, filepath.Dir(filepath.Dir(real)))
	}
	if len(roots) == 0 || roots[0] != defaultSDKRoot {
		roots = append(roots, defaultSDKRoot)
	}
	var tried []string
	for _, root := range roots {
		path := filepath.Join(root, spec.launcher)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			if os.Getenv("JAVA_HOME") == "" {
				if _, err := exec.LookPath("java"); err != nil {
					return "", &unavailableError{reason: "java not on PATH (the emulators need Java 11 or later)"}
				}
			}
			return path, nil
		}
		tried = append(tried, path)
	}
	return "", &unavailableError{reason: fmt.Sprintf("no executable emulator launcher at %s (install the gcloud emulator component)",
		strings.Join(tried, " or "))}
}

// freeLoopbackPort returns a loopback host and a port that was free a moment
// ago.
func freeLoopbackPort() (host, port string, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", "", fmt.Errorf("find a free port: %w", err)
	}
	return net.SplitHostPort(addr)
}

// waitReady polls until the emulator accepts connections on addr and then
// answers spec's probe, until it exits or until deadline.
func waitReady(p *process, addr string, spec emulatorSpec, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := errors.New("port not open")
	for {
		var d net.Dialer
		if conn, err := d.DialContext(ctx, "tcp", addr); err == nil {
			conn.Close()
			pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
			last = spec.probe(pctx, addr)
			pcancel()
			if last == nil {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", errExited, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("not ready on %s after %v: last check: %v", addr, startTimeout, last)
		case <-tick.C:
		}
	}
}

// probePubSub lists the topics of a project through the Pub/Sub client.
func probePubSub(ctx context.Context, addr string) error {
	c, err := pubsub.NewClient(ctx, readinessProject, PubSubClientOptions(addr)...)
	if err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	defer c.Close()
	it := c.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: "projects/" + readinessProject})
	if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
		return fmt.Errorf("list topics: %w", err)
	}
	return nil
}

// probeFirestore asks the Firestore emulator's HTTP root, which answers "Ok"
// once the emulator serves.
func probeFirestore(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Ok" {
		return fmt.Errorf("GET /: %s %q", resp.Status, body)
	}
	return nil
}
