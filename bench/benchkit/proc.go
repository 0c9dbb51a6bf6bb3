package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// defaultClockTicks is USER_HZ on every Linux architecture Go supports; it is
// used when `getconf CLK_TCK` is unavailable.
const defaultClockTicks = 100

// Memory is a process's resident memory, from /proc/PID/status.
type Memory struct {
	// RSS is VmRSS, the resident set now, in bytes.
	RSS int64
	// HWM is VmHWM, the peak resident set so far, in bytes.
	HWM int64
}

// ReadMemory reads VmRSS and VmHWM of process pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory: %w", err)
	}
	var m Memory
	for line := range bytes.Lines(b) {
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse %s of process %d: %w", name, pid, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("no VmRSS for process %d", pid)
	}
	return m, nil
}

// CPUClock reads processes' CPU time from /proc/PID/stat.
//
// It uses utime+stime of /proc/PID/stat rather than summing
// /proc/PID/task/*/schedstat: the kernel scales that total to the precise
// scheduler runtime and it includes threads that have already exited, which
// a per-thread sum would miss. Its unit, a clock tick (10 ms), is below 1% of
// the CPU a load window of a few seconds uses.
type CPUClock struct {
	hz int64
}

// NewCPUClock returns a CPUClock using `getconf CLK_TCK`, or 100 Hz when
// getconf is missing.
func NewCPUClock(ctx context.Context) CPUClock {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err != nil {
		return CPUClock{hz: defaultClockTicks}
	}
	hz, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || hz <= 0 {
		return CPUClock{hz: defaultClockTicks}
	}
	return CPUClock{hz: hz}
}

// Process returns the user plus system CPU time process pid has used so far,
// all its threads included.
func (c CPUClock) Process(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range []string{fields[utime], fields[stime]} {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(c.hz), nil
}
