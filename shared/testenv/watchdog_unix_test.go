//go:build unix

package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashHelperEnv makes TestWatchdogCrashHelper run: it is set only in the
// child process of TestWatchdogStopsEmulatorOfKilledBinary.
const crashHelperEnv = "TESTENV_CRASH_HELPER"

// TestWatchdogCrashHelper starts the Pub/Sub emulator, prints its process
// group and address, and SIGKILLs its own test binary, so that Main cannot
// stop the emulator.
func TestWatchdogCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		t.Skip("runs only as the child of TestWatchdogStopsEmulatorOfKilledBinary")
	}
	addr, p, _, err := start(pubsubEmulator)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("emulator pgid=%d addr=%s\n", p.pgid, addr)
	os.Stdout.Sync()
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

func TestWatchdogStopsEmulatorOfKilledBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an emulator of its own")
	}
	if _, err := findLauncher(pubsubEmulator); err != nil {
		if u, ok := err.(*unavailableError); ok {
			unavailable(t, pubsubEmulator.name, u.reason)
		}
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogCrashHelper$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper test binary ended with %v, want killed by SIGKILL; output:\n%s", err, out)
	}
	var pgid int
	var addr string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "emulator pgid="); ok {
			p, a, _ := strings.Cut(v, " addr=")
			pgid, _ = strconv.Atoi(p)
			addr = a
		}
	}
	if pgid <= 0 {
		t.Fatalf("helper printed no emulator process group; output:\n%s", out)
	}
	// The watchdog sends SIGTERM, then SIGKILL after stopGrace.
	if !waitGroupGone(pgid, stopGrace+killWait) {
		syscall.Kill(-pgid, syscall.SIGKILL)
		t.Fatalf("emulator process group %d still alive %v after its test binary was killed", pgid, stopGrace+killWait)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("emulator address %s still accepts connections after its test binary was killed", addr)
	}
}
