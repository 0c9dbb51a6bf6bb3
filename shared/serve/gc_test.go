package serve

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestContainerMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name  string
		files []string
		want  int64
		ok    bool
	}{
		{"cgroup v2 limit", []string{write("v2", "536870912\n")}, 536870912, true},
		{"cgroup v2 unlimited", []string{write("v2max", "max\n")}, 0, false},
		{"v1 after a missing v2", []string{missing, write("v1", "268435456\n")}, 268435456, true},
		{"v1 unlimited", []string{write("v1max", "9223372036854771712\n")}, 0, false},
		{"none", []string{missing}, 0, false},
	} {
		got, ok := containerMemoryLimit(tc.files)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: containerMemoryLimit = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// gcPercentNow returns the collector's current target.
func gcPercentNow() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGCKeepsWhatTheEnvironmentSets(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	t.Setenv("GOMEMLIMIT", "off") // keep this machine's cgroup limit out of the test process

	t.Setenv("GOGC", "100")
	tuneGC()
	if got := gcPercentNow(); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it left at 100", got)
	}

	os.Unsetenv("GOGC") // t.Setenv restores it
	tuneGC()
	if got := gcPercentNow(); got != gcPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, gcPercent)
	}
}
