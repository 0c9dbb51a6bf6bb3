// Command coldstart measures a shopfn deployable's cold start — exec to its
// first successful RPC — and its idle memory, against a reference deployable
// measured in the same run, the two interleaved round by round.
//
// Usage:
//
//	go run ./bench/cmd/coldstart -target NAME [-ref bare] [-n 20] [-json]
//
// Each round starts both targets once, in an order that alternates from one
// round to the next, each in a fresh working directory on a free port. The
// clock starts just before exec and stops when the target's probe first
// succeeds; after an idle pause the process's VmRSS and VmHWM are read from
// /proc, then it gets SIGTERM and must exit cleanly.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/bench/targets"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	target, ref string
	n, warmup   int
	idle        time.Duration
	limit       time.Duration
	grace       time.Duration
	json        bool
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	fs.StringVar(&c.target, "target", "", "target to measure (required)")
	fs.StringVar(&c.ref, "ref", "bare", "reference target")
	fs.IntVar(&c.n, "n", 20, "measured rounds; each starts both targets once")
	fs.IntVar(&c.warmup, "warmup", 1, "rounds run first and discarded")
	fs.DurationVar(&c.idle, "idle", 300*time.Millisecond, "idle pause between the first RPC and reading memory")
	fs.DurationVar(&c.limit, "limit", 10*time.Second, "longest wait for the first successful RPC")
	fs.DurationVar(&c.grace, "grace", 5*time.Second, "longest wait for exit after SIGTERM")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if c.target == "" {
		return config{}, fmt.Errorf("-target is required")
	}
	if c.n < 1 || c.warmup < 0 {
		return config{}, fmt.Errorf("-n must be positive and -warmup not negative")
	}
	return c, nil
}

// sample is one cold start.
type sample struct {
	ColdStartMS  float64 `json:"cold_start_ms"`
	IdleRSSBytes int64   `json:"idle_rss_bytes"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
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

	for r := -cfg.warmup; r < cfg.n; r++ {
		progress(r, cfg.n)
		for _, i := range benchkit.Order(r) {
			s, err := coldStart(ctx, roles[i].dep, cfg)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", r+1, roles[i].label, roles[i].dep.Target.Name, err)
			}
			if r >= 0 {
				roles[i].samples = append(roles[i].samples, s)
			}
		}
	}
	progress(cfg.n, cfg.n)

	rep := newReport(cfg, roles)
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout)
}

// progress shows round r of n on stderr when it is a terminal.
func progress(r, n int) {
	if fi, err := os.Stderr.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return
	}
	if r >= n {
		fmt.Fprint(os.Stderr, "\r\033[K")
		return
	}
	fmt.Fprintf(os.Stderr, "\rround %d/%d", max(r+1, 0), n)
}

// setup builds and prepares the reference and the target; cleanup removes
// their files.
func setup(ctx context.Context, refName, targetName string) ([2]*role, func(), error) {
	var roles [2]*role
	ref, target, err := targets.LookupPair(refName, targetName)
	if err != nil {
		return roles, nil, err
	}
	pair, err := benchkit.SetupPair(ctx, "coldstart", ref, target)
	if err != nil {
		return roles, nil, err
	}
	for i, d := range pair.Deployables {
		roles[i] = &role{label: benchkit.Labels[i], dep: d}
	}
	return roles, func() { pair.Close() }, nil
}

// coldStart starts one fresh process of d, times exec to first successful
// probe, reads its memory after the idle pause and stops it.
func coldStart(ctx context.Context, d *benchkit.Deployable, cfg config) (sample, error) {
	p, err := d.NewProcess()
	if err != nil {
		return sample{}, err
	}
	defer p.Close()
	if err := p.Start(); err != nil {
		return sample{}, err
	}
	elapsed, cc, err := p.WaitReady(ctx, d.Target.Probe, cfg.limit)
	if err != nil {
		return sample{}, err
	}
	cc.Close() // idle means no client connected

	select {
	case <-time.After(cfg.idle):
	case <-ctx.Done():
		return sample{}, ctx.Err()
	}
	mem, err := benchkit.ReadMemory(p.PID())
	if err != nil {
		return sample{}, err
	}
	if err := p.Stop(cfg.grace); err != nil {
		return sample{}, err
	}
	return sample{
		ColdStartMS:  float64(elapsed) / float64(time.Millisecond),
		IdleRSSBytes: mem.RSS,
		PeakRSSBytes: mem.HWM,
	}, nil
}

// report is the command's output.
type report struct {
	Rounds int        `json:"rounds"`
	Warmup int        `json:"warmup_rounds"`
	Ref    roleReport `json:"ref"`
	Target roleReport `json:"target"`
	Ratios ratios     `json:"ratios"`
}

// roleReport summarises one role's samples; memory is in MiB.
type roleReport struct {
	Name        string           `json:"name"`
	Package     string           `json:"package"`
	BinaryBytes int64            `json:"binary_bytes"`
	ColdStartMS benchkit.Summary `json:"cold_start_ms"`
	IdleRSSMiB  benchkit.Summary `json:"idle_rss_mib"`
	PeakRSSMiB  benchkit.Summary `json:"peak_rss_mib"`
	Samples     []sample         `json:"samples"`
}

// ratios are target/ref.
type ratios struct {
	ColdStart  benchkit.Ratio `json:"cold_start"`
	IdleRSS    benchkit.Ratio `json:"idle_rss"`
	PeakRSS    benchkit.Ratio `json:"peak_rss"`
	BinarySize float64        `json:"binary_size"`
}

// series are one role's samples as columns.
type series struct {
	coldStart, idleRSS, peakRSS []float64
}

func columns(samples []sample) series {
	var s series
	for _, x := range samples {
		s.coldStart = append(s.coldStart, x.ColdStartMS)
		s.idleRSS = append(s.idleRSS, mib(x.IdleRSSBytes))
		s.peakRSS = append(s.peakRSS, mib(x.PeakRSSBytes))
	}
	return s
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func newReport(cfg config, roles [2]*role) report {
	ref, tgt := columns(roles[0].samples), columns(roles[1].samples)
	summarize := func(r *role, s series) roleReport {
		return roleReport{
			Name:        r.dep.Target.Name,
			Package:     r.dep.Target.Package,
			BinaryBytes: r.dep.Binary.Size,
			ColdStartMS: benchkit.Summarize(s.coldStart),
			IdleRSSMiB:  benchkit.Summarize(s.idleRSS),
			PeakRSSMiB:  benchkit.Summarize(s.peakRSS),
			Samples:     r.samples,
		}
	}
	return report{
		Rounds: cfg.n,
		Warmup: cfg.warmup,
		Ref:    summarize(roles[0], ref),
		Target: summarize(roles[1], tgt),
		Ratios: ratios{
			ColdStart:  benchkit.Compare(tgt.coldStart, ref.coldStart),
			IdleRSS:    benchkit.Compare(tgt.idleRSS, ref.idleRSS),
			PeakRSS:    benchkit.Compare(tgt.peakRSS, ref.peakRSS),
			BinarySize: float64(roles[1].dep.Binary.Size) / float64(roles[0].dep.Binary.Size),
		},
	}
}

func (r report) print(w io.Writer) error {
	nw := max(len("name"), len(r.Ref.Name), len(r.Target.Name))
	fmt.Fprintf(w, "cold start = exec → first successful RPC; %d interleaved rounds (+%d warm-up)\n\n", r.Rounds, r.Warmup)
	fmt.Fprintf(w, "%-7s %-*s %10s %9s %7s %7s %12s %12s\n", "role", nw, "name", "binary MiB", "median ms", "p90 ms", "min ms", "idle RSS MiB", "peak RSS MiB")
	for _, x := range []struct {
		label string
		rr    roleReport
	}{{"ref", r.Ref}, {"target", r.Target}} {
		fmt.Fprintf(w, "%-7s %-*s %10.1f %9.1f %7.1f %7.1f %12.1f %12.1f\n", x.label, nw, x.rr.Name,
			mib(x.rr.BinaryBytes), x.rr.ColdStartMS.Median, x.rr.ColdStartMS.P90, x.rr.ColdStartMS.Min,
			x.rr.IdleRSSMiB.Median, x.rr.PeakRSSMiB.Median)
	}
	c := r.Ratios
	fmt.Fprintf(w, "\n%-21s %7s %10s %9s %9s\n", "target/ref", "binary", "cold start", "idle RSS", "peak RSS")
	fmt.Fprintf(w, "%-21s %7s %9.2f× %8.2f× %8.2f×\n", "median of pair ratios", "", c.ColdStart.PairMedian, c.IdleRSS.PairMedian, c.PeakRSS.PairMedian)
	_, err := fmt.Fprintf(w, "%-21s %6.2f× %9.2f× %8.2f× %8.2f×\n", "ratio of medians", c.BinarySize, c.ColdStart.OfMedians, c.IdleRSS.OfMedians, c.PeakRSS.OfMedians)
	return err
}
