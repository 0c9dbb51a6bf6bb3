// Command throughput loads a shopfn deployable and a reference deployable
// with the same closed-loop load, interleaved round by round, and reports
// requests per second, the server's CPU time per RPC and latency, as figures
// and as target/ref ratios.
//
// Usage:
//
//	go run ./bench/cmd/throughput -target NAME [-ref bare] [-c 64] [-conns 1] [-d 5s] [-rounds 3] [-json]
//
// Each round starts a fresh process of each target (the order alternates
// from round to round), waits for its probe, warms it up, then runs c
// workers sharing conns client connections, each calling the target's Call
// back to back for d. The server's CPU time is utime+stime from
// /proc/PID/stat read just before and just after that window.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/bench/targets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	target, ref    string
	workers, conns int
	window, warmup time.Duration
	rounds         int
	limit, grace   time.Duration
	json           bool
	cpuProfile     string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("throughput", flag.ContinueOnError)
	fs.StringVar(&c.target, "target", "", "target to measure (required)")
	fs.StringVar(&c.ref, "ref", "bare", "reference target")
	fs.IntVar(&c.workers, "c", 64, "concurrent workers, each calling back to back")
	fs.IntVar(&c.conns, "conns", 1, "client connections the workers share round-robin")
	fs.DurationVar(&c.window, "d", 5*time.Second, "measured load window per process")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "load before each window, discarded")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each loads one fresh process of both targets")
	fs.DurationVar(&c.limit, "limit", 10*time.Second, "longest wait for the first successful probe")
	fs.DurationVar(&c.grace, "grace", 5*time.Second, "longest wait for exit after SIGTERM")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this tool (the load generator and any services a target runs in it) over the target's windows to `file`")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	switch {
	case c.target == "":
		return config{}, fmt.Errorf("-target is required")
	case c.workers < 1 || c.conns < 1 || c.rounds < 1:
		return config{}, fmt.Errorf("-c, -conns and -rounds must be positive")
	case c.conns > c.workers:
		return config{}, fmt.Errorf("-conns %d is more than -c %d workers", c.conns, c.workers)
	case c.window <= 0 || c.warmup < 0:
		return config{}, fmt.Errorf("-d must be positive and -warmup not negative")
	}
	return c, nil
}

// sample is one load window on one process. Server CPU per RPC divides the
// server's CPU time in the window by every call made, failed ones included.
type sample struct {
	OK                int            `json:"ok"`
	Errors            map[string]int `json:"errors,omitempty"`
	ElapsedSeconds    float64        `json:"elapsed_s"`
	RPS               float64        `json:"rps"`
	ServerCPUSeconds  float64        `json:"server_cpu_s"`
	ServerCPUPerRPCUS float64        `json:"server_cpu_us_per_rpc"`
	P50MS             float64        `json:"p50_ms"`
	P99MS             float64        `json:"p99_ms"`
	PeakRSSBytes      int64          `json:"peak_rss_bytes"`
}

// role is the reference or the target, and its samples.
type role struct {
	label   string
	dep     *benchkit.Deployable
	samples []sample
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	roles, cleanup, err := setup(ctx, cfg.ref, cfg.target)
	if err != nil {
		return err
	}
	defer cleanup()
	clock := benchkit.NewCPUClock(ctx)

	for r := range cfg.rounds {
		for _, i := range benchkit.Order(r) {
			progress(fmt.Sprintf("round %d/%d: %s %s", r+1, cfg.rounds, roles[i].label, roles[i].dep.Target.Name))
			s, err := measure(ctx, roles[i].dep, cfg, clock)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", r+1, roles[i].label, roles[i].dep.Target.Name, err)
			}
			roles[i].samples = append(roles[i].samples, s)
		}
	}
	progress("")

	rep := newReport(cfg, roles)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout)
}

// progress shows msg on stderr when it is a terminal; "" clears it.
func progress(msg string) {
	if fi, err := os.Stderr.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return
	}
	fmt.Fprint(os.Stderr, "\r\033[K"+msg)
}

// setup builds and prepares the reference and the target; cleanup removes
// their files.
func setup(ctx context.Context, refName, targetName string) ([2]*role, func(), error) {
	var roles [2]*role
	ref, target, err := targets.LookupPair(refName, targetName)
	if err != nil {
		return roles, nil, err
	}
	for _, t := range [2]benchkit.Target{ref, target} {
		if t.Call == nil {
			return roles, nil, fmt.Errorf("target %s has no Call to load it with", t.Name)
		}
	}
	pair, err := benchkit.SetupPair(ctx, "throughput", ref, target)
	if err != nil {
		return roles, nil, err
	}
	for i, d := range pair.Deployables {
		roles[i] = &role{label: benchkit.Labels[i], dep: d}
	}
	return roles, func() { pair.Close() }, nil
}

// measure starts one fresh process of d, warms it up, loads it for the
// window while reading its CPU time, and stops it.
func measure(ctx context.Context, d *benchkit.Deployable, cfg config, clock benchkit.CPUClock) (sample, error) {
	p, err := d.NewProcess()
	if err != nil {
		return sample{}, err
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		return sample{}, err
	}
	_, first, err := p.WaitReady(ctx, d.Target.Probe, cfg.limit)
	if err != nil {
		return sample{}, err
	}
	conns := []*grpc.ClientConn{first}
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	for len(conns) < cfg.conns {
		cc, err := benchkit.Dial(p.Port)
		if err != nil {
			return sample{}, err
		}
		conns = append(conns, cc)
	}
	calls := make([]func(context.Context) error, len(conns))
	for i, cc := range conns {
		if calls[i], err = d.Target.Call(ctx, cc); err != nil {
			return sample{}, fmt.Errorf("set up load on connection %d: %w", i, err)
		}
	}

	if cfg.warmup > 0 {
		benchkit.Load(ctx, calls, cfg.workers, cfg.warmup)
	}
	cpu0, err := clock.Process(p.PID())
	if err != nil {
		return sample{}, err
	}
	stopProfile, err := startProfile(cfg, d)
	if err != nil {
		return sample{}, err
	}
	res := benchkit.Load(ctx, calls, cfg.workers, cfg.window)
	if err := stopProfile(); err != nil {
		return sample{}, err
	}
	cpu1, err := clock.Process(p.PID())
	if err != nil {
		return sample{}, err
	}
	if err := ctx.Err(); err != nil {
		return sample{}, err
	}
	mem, err := benchkit.ReadMemory(p.PID())
	if err != nil {
		return sample{}, err
	}
	for _, cc := range conns {
		cc.Close()
	}
	conns = nil
	if err := p.Stop(cfg.grace); err != nil {
		return sample{}, err
	}

	s := sample{
		OK:               res.OK,
		ElapsedSeconds:   res.Elapsed.Seconds(),
		RPS:              float64(res.OK) / res.Elapsed.Seconds(),
		ServerCPUSeconds: (cpu1 - cpu0).Seconds(),
		P50MS:            ms(res.Latency(0.50)),
		P99MS:            ms(res.Latency(0.99)),
		PeakRSSBytes:     mem.HWM,
	}
	if calls := res.OK + errorCount(res.Errors); calls > 0 {
		s.ServerCPUPerRPCUS = float64((cpu1-cpu0)/time.Microsecond) / float64(calls)
	}
	if len(res.Errors) > 0 {
		s.Errors = map[string]int{}
		for code, n := range res.Errors {
			s.Errors[code.String()] = n
		}
	}
	return s, nil
}

func errorCount[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// report is the command's output.
type report struct {
	Workers       int        `json:"workers"`
	Conns         int        `json:"conns"`
	WindowSeconds float64    `json:"window_s"`
	WarmupSeconds float64    `json:"warmup_s"`
	Rounds        int        `json:"rounds"`
	Ref           roleReport `json:"ref"`
	Target        roleReport `json:"target"`
	Ratios        ratios     `json:"ratios"`
}

// roleReport summarises one role's rounds.
type roleReport struct {
	Name              string           `json:"name"`
	Package           string           `json:"package"`
	RPS               benchkit.Summary `json:"rps"`
	ServerCPUPerRPCUS benchkit.Summary `json:"server_cpu_us_per_rpc"`
	// ServerCores is server CPU seconds per second of load.
	ServerCores benchkit.Summary `json:"server_cores"`
	P50MS       benchkit.Summary `json:"p50_ms"`
	P99MS       benchkit.Summary `json:"p99_ms"`
	PeakRSSMiB  benchkit.Summary `json:"peak_rss_mib"`
	Errors      map[string]int   `json:"errors,omitempty"`
	Samples     []sample         `json:"samples"`
}

// ratios are target/ref.
type ratios struct {
	RPS             benchkit.Ratio `json:"rps"`
	ServerCPUPerRPC benchkit.Ratio `json:"server_cpu_per_rpc"`
	P50             benchkit.Ratio `json:"p50"`
	P99             benchkit.Ratio `json:"p99"`
	PeakRSS         benchkit.Ratio `json:"peak_rss"`
}

// series are one role's samples as columns.
type series struct {
	rps, cpuPerRPC, cores, p50, p99, peakRSS []float64
}

func columns(samples []sample) series {
	var s series
	for _, x := range samples {
		s.rps = append(s.rps, x.RPS)
		s.cpuPerRPC = append(s.cpuPerRPC, x.ServerCPUPerRPCUS)
		s.cores = append(s.cores, x.ServerCPUSeconds/x.ElapsedSeconds)
		s.p50 = append(s.p50, x.P50MS)
		s.p99 = append(s.p99, x.P99MS)
		s.peakRSS = append(s.peakRSS, mib(x.PeakRSSBytes))
	}
	return s
}

func newReport(cfg config, roles [2]*role) report {
	ref, tgt := columns(roles[0].samples), columns(roles[1].samples)
	summarize := func(r *role, s series) roleReport {
		rr := roleReport{
			Name:              r.dep.Target.Name,
			Package:           r.dep.Target.Package,
			RPS:               benchkit.Summarize(s.rps),
			ServerCPUPerRPCUS: benchkit.Summarize(s.cpuPerRPC),
			ServerCores:       benchkit.Summarize(s.cores),
			P50MS:             benchkit.Summarize(s.p50),
			P99MS:             benchkit.Summarize(s.p99),
			PeakRSSMiB:        benchkit.Summarize(s.peakRSS),
			Samples:           r.samples,
		}
		for _, x := range r.samples {
			for code, n := range x.Errors {
				if rr.Errors == nil {
					rr.Errors = map[string]int{}
				}
				rr.Errors[code] += n
			}
		}
		return rr
	}
	return report{
		Workers:       cfg.workers,
		Conns:         cfg.conns,
		WindowSeconds: cfg.window.Seconds(),
		WarmupSeconds: cfg.warmup.Seconds(),
		Rounds:        cfg.rounds,
		Ref:           summarize(roles[0], ref),
		Target:        summarize(roles[1], tgt),
		Ratios: ratios{
			RPS:             benchkit.Compare(tgt.rps, ref.rps),
			ServerCPUPerRPC: benchkit.Compare(tgt.cpuPerRPC, ref.cpuPerRPC),
			P50:             benchkit.Compare(tgt.p50, ref.p50),
			P99:             benchkit.Compare(tgt.p99, ref.p99),
			PeakRSS:         benchkit.Compare(tgt.peakRSS, ref.peakRSS),
		},
	}
}

func (r report) print(w io.Writer) error {
	nw := max(len("name"), len(r.Ref.Name), len(r.Target.Name))
	fmt.Fprintf(w, "closed-loop load: %d workers over %d connection(s), %gs window after %gs warm-up; medians of %d interleaved rounds\n\n",
		r.Workers, r.Conns, r.WindowSeconds, r.WarmupSeconds, r.Rounds)
	fmt.Fprintf(w, "%-7s %-*s %8s %13s %12s %7s %7s %12s %7s\n", "role", nw, "name", "rps", "server µs/RPC", "server cores", "p50 ms", "p99 ms", "peak RSS MiB", "errors")
	for _, x := range []struct {
		label string
		rr    roleReport
	}{{"ref", r.Ref}, {"target", r.Target}} {
		fmt.Fprintf(w, "%-7s %-*s %8.0f %13.1f %12.2f %7.2f %7.2f %12.1f %7d\n", x.label, nw, x.rr.Name,
			x.rr.RPS.Median, x.rr.ServerCPUPerRPCUS.Median, x.rr.ServerCores.Median,
			x.rr.P50MS.Median, x.rr.P99MS.Median, x.rr.PeakRSSMiB.Median, errorCount(x.rr.Errors))
	}
	c := r.Ratios
	fmt.Fprintf(w, "\n%-21s %7s %13s %7s %7s %12s\n", "target/ref", "rps", "server µs/RPC", "p50", "p99", "peak RSS")
	for _, x := range []struct {
		label string
		pick  func(benchkit.Ratio) float64
	}{
		{"median of pair ratios", func(r benchkit.Ratio) float64 { return r.PairMedian }},
		{"ratio of medians", func(r benchkit.Ratio) float64 { return r.OfMedians }},
	} {
		fmt.Fprintf(w, "%-21s %6s× %12.2f× %6.2f× %6.2f× %11.2f×\n", x.label,
			ratio3(x.pick(c.RPS)), x.pick(c.ServerCPUPerRPC), x.pick(c.P50), x.pick(c.P99), x.pick(c.PeakRSS))
	}
	for _, x := range []roleReport{r.Ref, r.Target} {
		if len(x.Errors) == 0 {
			continue
		}
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(x.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", code, x.Errors[code]))
		}
		fmt.Fprintf(w, "\nerrors of %s: %s\n", x.Name, strings.Join(parts, ", "))
	}
	return nil
}

// ratio3 prints a ratio with three significant digits, so that small ones
// (CreateOrder's rps against an echo's) keep their precision: 0.0318, 0.905.
func ratio3(r float64) string {
	if r >= 1 || r <= 0 {
		return strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strconv.FormatFloat(r, 'g', 3, 64)
}

// startProfile starts profiling this process's CPU for the window of the
// target (not the reference) when -cpuprofile names a file; the returned
// function stops and writes it. Every window of the target profiles into
// the same file, so the last round's is what remains.
func startProfile(cfg config, d *benchkit.Deployable) (stop func() error, err error) {
	if cfg.cpuProfile == "" || d.Target.Name != cfg.target {
		return func() error { return nil }, nil
	}
	f, err := os.Create(cfg.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
