package serve

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the garbage collector's target the deployables run with
// unless GOGC is set. A deployable's live heap is a few MiB, so at Go's
// default of 100 it collects every few MiB of allocation: under load the
// collector took ~15% of a catalog instance's CPU. At 400 a collection
// comes every ~20 MiB, GetProduct needs 13% less CPU per call and serves
// ~20% more (bench/cmd/throughput -target catalog-get), for ~15 MiB more
// resident memory under load. The memory limit below keeps the heap inside the
// container however high the target.
const gcPercent = 400

// memoryLimitShare is the part of the container's memory the Go heap may
// use before the collector works harder (GOMEMLIMIT), leaving the rest to
// the binary's pages, goroutine stacks and SQLite's own allocations.
const memoryLimitShare = 0.75

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneGC applies gcPercent and a memory limit derived from the container's,
// each unless the environment sets its own (GOGC, GOMEMLIMIT).
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if limit, ok := containerMemoryLimit(cgroupMemoryFiles); ok {
			debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
		}
	}
}

// containerMemoryLimit returns the memory limit in the first of files that
// exists; false when there is none, or it says unlimited ("max" in v2, a
// huge number in v1).
func containerMemoryLimit(files []string) (int64, bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
