package benchkit

import (
	"context"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// LoadResult is what one load window produced.
type LoadResult struct {
	// OK counts the calls that succeeded.
	OK int
	// Errors counts failed calls by gRPC code.
	Errors map[codes.Code]int
	// Elapsed runs from the first call to the last call's return.
	Elapsed time.Duration
	// Latencies are the durations of the successful calls, sorted.
	Latencies []time.Duration
}

// Load runs workers goroutines calling calls[i%len(calls)] back to back; no
// worker starts a call after d, and Load returns when the calls in flight
// have returned. Calls use ctx, not a deadline, so none is cut short.
func Load(ctx context.Context, calls []func(context.Context) error, workers int, d time.Duration) LoadResult {
	type tally struct {
		ok   int
		errs map[codes.Code]int
		lat  []time.Duration
	}
	tallies := make([]tally, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		call := calls[i%len(calls)]
		t := &tallies[i]
		t.errs = map[codes.Code]int{}
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				err := call(ctx)
				if err != nil {
					t.errs[status.Code(err)]++
					continue
				}
				t.ok++
				t.lat = append(t.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()

	r := LoadResult{Elapsed: time.Since(start), Errors: map[codes.Code]int{}}
	for _, t := range tallies {
		r.OK += t.ok
		for c, n := range t.errs {
			r.Errors[c] += n
		}
		r.Latencies = append(r.Latencies, t.lat...)
	}
	slices.Sort(r.Latencies)
	return r
}

// Latency returns the q-quantile of the successful calls' latencies
// (nearest rank), or 0 when none succeeded.
func (r LoadResult) Latency(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(q*float64(len(r.Latencies))), len(r.Latencies)-1)]
}
