//go:build pprof

package serve

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// With -tags pprof (SHOPFN_BENCH_TAGS=pprof go run ./bench/cmd/throughput …),
// a deployable writes a CPU profile of its whole run to
// $SHOPFN_CPU_PROFILE. The tag keeps runtime/pprof out of real builds.
func init() {
	path := os.Getenv("SHOPFN_CPU_PROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return
	}
	stopProfile = func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
