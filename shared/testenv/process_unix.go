//go:build unix

package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

const (
	// stopGrace is how long an emulator gets to exit on SIGTERM before
	// SIGKILL. Measured here, the Pub/Sub emulator exits within 30 ms of
	// SIGTERM and the Firestore one within 0.35–0.42 s; two seconds leaves
	// room on a loaded machine. SIGKILL after it loses nothing: the
	// emulators keep their data in memory only.
	stopGrace = 2 * time.Second

	// killWait bounds the wait for a SIGKILLed process group to disappear,
	// which takes milliseconds; it only keeps a pathological case from
	// hanging the test binary.
	killWait = 5 * time.Second

	// groupPoll paces the checks that a process group is gone.
	groupPoll = 10 * time.Millisecond
)

// watchdogScript runs the emulator launcher ("$@") in the background and
// exits with its status. Meanwhile a subshell reads the pipe on fd 3 (the
// script's stdin), whose write end only the test binary holds: the read
// returns at end of file, which the kernel delivers when the test binary
// exits, however it exits. The subshell then sends SIGTERM and, after the
// grace period ($1 seconds), SIGKILL to the whole process group, ignoring
// SIGTERM itself so that it lives to send SIGKILL. The script runs in its
// own process group (Setpgid), which the launcher and the JVM it starts
// inherit.
//
// Pdeathsig is deliberately not used instead: it reaches only the direct
// child (the Firestore launcher is a bash script that forks java, so java
// would be orphaned), it fires when the OS thread that started the child
// exits rather than the process (golang/go#27505), which could kill an
// emulator under a live test binary, and it exists on Linux only.
const watchdogScript = `grace=$1; shift
exec 3<&0 </dev/null
"$@" 3<&- &
emulator=$!
(
	read -r _ <&3
	trap '' TERM
	kill -TERM 0
	sleep "$grace"
	kill -KILL 0
) &
watchdog=$!
exec 3<&-
wait "$emulator"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
`

// platformProcess holds the write end of the watchdog's pipe.
type platformProcess struct {
	// lifeline must stay referenced while the emulator runs: were it
	// garbage collected, its finalizer would close it and the watchdog
	// would stop the emulator.
	lifeline *os.File
}

// launch starts launcher with args under the watchdog, in a new process
// group, with its output captured.
func launch(launcher string, args []string) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", launcher, err)
	}
	grace := strconv.FormatFloat(stopGrace.Seconds(), 'f', -1, 64)
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdogScript, "testenv-watchdog", grace, launcher}, args...)...)
	out := &tailBuffer{}
	cmd.Stdin = r
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The JVM holds the output pipe too; once the launcher has exited, do
	// not wait long for it to let go.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", launcher, err)
	}
	r.Close()
	p := &process{
		pgid:     cmd.Process.Pid,
		out:      out,
		exited:   make(chan struct{}),
		platform: platformProcess{lifeline: w},
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM to the emulator's process group, then SIGKILL after
// stopGrace, and waits until the group is gone.
func (p *process) stop() error {
	_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
	gone := waitGroupGone(p.pgid, stopGrace)
	if !gone {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		gone = waitGroupGone(p.pgid, killWait)
	}
	p.platform.lifeline.Close()
	select {
	case <-p.exited:
	case <-time.After(killWait):
	}
	if !gone {
		return fmt.Errorf("emulator process group %d still alive %v after SIGKILL", p.pgid, killWait)
	}
	return nil
}

// waitGroupGone reports whether process group pgid has no process left
// within d.
func waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(groupPoll)
	}
}
