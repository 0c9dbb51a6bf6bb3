package benchkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	// probeInterval is the pause between failed probes: short enough to add
	// at most ~1 ms to a cold start of tens of ms, long enough that polling
	// does not steal much CPU from the starting process on a 2-core machine.
	probeInterval = time.Millisecond
	// probeAttemptTimeout bounds one probe attempt. A fresh process's first
	// RPC may legitimately take a while (opening a database), so it is far
	// above any cold start we expect, yet well inside the overall limit.
	probeAttemptTimeout = time.Second
	// logTailBytes is how much of a failed process's output an error quotes.
	logTailBytes = 2048
)

// Deployable is a Target that has been built and prepared: it starts as many
// fresh processes as a benchmark needs.
type Deployable struct {
	// Target is what was built.
	Target Target
	// Binary is the built executable.
	Binary Binary

	runs   string
	perRun func(runDir string) ([]string, error)
	seq    int
}

// Setup builds t from moduleRoot into the directory work (which it creates)
// and runs t.Prepare with a scratch directory inside work.
func Setup(ctx context.Context, moduleRoot, work string, t Target) (*Deployable, error) {
	d := &Deployable{Target: t, runs: filepath.Join(work, "runs")}
	scratch := filepath.Join(work, "scratch")
	for _, dir := range []string{work, d.runs, scratch} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("set up %s: %w", t.Name, err)
		}
	}
	bin, err := Build(ctx, moduleRoot, t.Package, filepath.Join(work, t.Name))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", t.Name, err)
	}
	d.Binary = bin
	if t.Prepare != nil {
		if d.perRun, err = t.Prepare(ctx, scratch); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", t.Name, err)
		}
	}
	return d, nil
}

// NewProcess readies, without starting it, a fresh process: a new working
// directory prepared by the target's PerRun, a free loopback port in PORT and
// its output going to a log file. The caller must Stop or Close it.
func (d *Deployable) NewProcess() (*Process, error) {
	d.seq++
	dir := filepath.Join(d.runs, strconv.Itoa(d.seq))
	p := &Process{Dir: dir, logPath: dir + ".log", done: make(chan struct{})}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	env := slices.Concat(os.Environ(), d.Target.Env)
	if d.perRun != nil {
		extra, err := d.perRun(dir)
		if err != nil {
			p.cleanup()
			return nil, fmt.Errorf("prepare run dir of %s: %w", d.Target.Name, err)
		}
		env = append(env, extra...)
	}
	port, err := freePort()
	if err != nil {
		p.cleanup()
		return nil, err
	}
	p.Port = port
	env = append(env, "PORT="+strconv.Itoa(port))

	if p.log, err = os.Create(p.logPath); err != nil {
		p.cleanup()
		return nil, fmt.Errorf("create process log: %w", err)
	}
	p.cmd = exec.Command(d.Binary.Path)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a terminal's Ctrl-C reaches the harness only
		Pdeathsig: syscall.SIGKILL, // no server outlives a killed harness
	}
	return p, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port, nil
}

// Process is one run of a deployable. Its methods are not safe for
// concurrent use.
type Process struct {
	// Port is the port the process was told to listen on.
	Port int
	// Dir is the process's fresh working directory.
	Dir string
	// Started is the time taken just before exec.
	Started time.Time

	cmd     *exec.Cmd
	log     *os.File
	logPath string
	done    chan struct{}
	waitErr error
	closed  bool
	stopErr error
}

// Start execs the process, recording Started just before.
func (p *Process) Start() error {
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.cmd.Path, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// PID returns the process id, or 0 before Start.
func (p *Process) PID() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// WaitReady calls probe, every millisecond or so with a short timeout per
// attempt, until it succeeds, and returns the time from Started to that
// success together with the connection it succeeded on, which the caller
// must close. It fails if the process exits or limit passes first.
//
// Until the server accepts a connection, every attempt runs on a new client
// connection: a connection that has failed waits out grpc-go's reconnect
// machinery, which measured here added ~1 ms to a 7 ms cold start. Once a
// connection is up, later attempts reuse it.
func (p *Process) WaitReady(ctx context.Context, probe func(context.Context, *grpc.ClientConn) error, limit time.Duration) (time.Duration, *grpc.ClientConn, error) {
	deadline := p.Started.Add(limit)
	var cc *grpc.ClientConn
	fail := func(err error) (time.Duration, *grpc.ClientConn, error) {
		if cc != nil {
			cc.Close()
		}
		return 0, nil, err
	}
	for {
		if cc == nil {
			var err error
			if cc, err = Dial(p.Port); err != nil {
				return fail(err)
			}
		}
		attempt, cancel := context.WithTimeout(ctx, min(probeAttemptTimeout, time.Until(deadline)))
		err := probe(attempt, cc)
		cancel()
		if err == nil {
			return time.Since(p.Started), cc, nil
		}
		if cc.GetState() != connectivity.Ready {
			cc.Close()
			cc = nil
		}
		select {
		case <-p.done:
			return fail(fmt.Errorf("process exited before it was ready (%v), last probe: %w%s", p.waitErr, err, p.logTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("not ready %v after exec: %w%s", limit, err, p.logTail()))
		}
		time.Sleep(probeInterval)
	}
}

// Stop sends SIGTERM, waits up to grace for the process to exit and checks
// that it exited cleanly; it kills the process if grace passes. It then
// removes the working directory and log. Calling it again returns the first
// result.
func (p *Process) Stop(grace time.Duration) error {
	if p.closed {
		return p.stopErr
	}
	p.closed = true
	p.stopErr = p.stop(grace)
	p.cleanup()
	return p.stopErr
}

func (p *Process) stop(grace time.Duration) error {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	select {
	case <-p.done:
		return fmt.Errorf("process exited before it was stopped: %v%s", p.waitErr, p.logTail())
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM: %w", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("process still running %v after SIGTERM, killed%s", grace, p.logTail())
	}
	if p.waitErr != nil {
		return fmt.Errorf("process exit after SIGTERM: %w%s", p.waitErr, p.logTail())
	}
	return nil
}

// Close kills the process if it is still running and removes its files. It
// does nothing after Stop, so it suits a defer on error paths.
func (p *Process) Close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cleanup()
}

func (p *Process) cleanup() {
	if p.log != nil {
		p.log.Close()
	}
	os.Remove(p.logPath)
	os.RemoveAll(p.Dir)
}

// logTail returns the end of the process's output, for error messages.
func (p *Process) logTail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
		if _, err := f.Seek(-logTailBytes, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\n--- process output ---\n" + string(b)
}

// Dial returns a client for 127.0.0.1:port. Its reconnect backoff is a flat
// millisecond, so that a load that loses its connection does not sit out
// grpc-go's default one-second backoff.
func Dial(port int) (*grpc.ClientConn, error) {
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: time.Millisecond, Multiplier: 1, MaxDelay: time.Millisecond},
			MinConnectTimeout: probeAttemptTimeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return cc, nil
}
