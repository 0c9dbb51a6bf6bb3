// Command eventsbench measures shopfn's event path on one machine, as
// `shopfn dev` runs it: producers commit events to a SQLite outbox at a
// paced rate, the relay publishes each commit to the embedded broker
// (pstest), the push bridge posts every message to a CloudEvent function
// served by functions-framework-go, and the function acknowledges it. It
// reports the throughput reached, the lag from commit to the function's
// handling (p50/p90/p99/max), and counts every event: lost ones (committed,
// never handled) and duplicates.
//
//	go run ./bench/cmd/eventsbench -rate 10000 -d 10s
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/infra"
	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/devbroker"
	"github.com/shopfn/shopfn/shared/events/relay"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

func main() {
	rate := flag.Int("rate", 10000, "events committed per second")
	dur := flag.Duration("d", 10*time.Second, "how long to produce")
	producers := flag.Int("producers", 8, "goroutines committing events")
	perTx := flag.Int("per-tx", 1, "events per transaction (1: as a service commits one change; more measures the event path with the commit cost shared)")
	concurrency := flag.Int("push-concurrency", 256, "deliveries in flight in the push bridge")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := run(*rate, *dur, *producers, *perTx, *concurrency)
	if err != nil {
		log.Fatal(err) //nolint:gocritic // the profile of a failed run is worthless
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	fmt.Printf("events committed  %d in %s (target %d/s, reached %.0f/s)\n", r.Committed, r.Produce, *rate, r.CommitRate)
	fmt.Printf("events handled    %d unique, %d duplicate deliveries, %d LOST\n", r.Handled, r.Duplicates, r.Lost)
	fmt.Printf("throughput        %.0f events/s, commit to ack (last event handled %s after the last commit)\n", r.Throughput, r.Drain)
	fmt.Printf("lag commit→handled  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.LagP50, r.LagP90, r.LagP99, r.LagMax)
}

// report is what one run measured.
type report struct {
	Committed  int           `json:"committed"`
	Handled    int           `json:"handled"`
	Duplicates int           `json:"duplicates"`
	Lost       int           `json:"lost"`
	Produce    time.Duration `json:"produce_ns"`
	Drain      time.Duration `json:"drain_ns"`
	CommitRate float64       `json:"commit_rate"`
	Throughput float64       `json:"throughput"`
	LagP50     float64       `json:"lag_p50_ms"`
	LagP90     float64       `json:"lag_p90_ms"`
	LagP99     float64       `json:"lag_p99_ms"`
	LagMax     float64       `json:"lag_max_ms"`
}

type tracker struct {
	mu        sync.Mutex
	committed map[string]time.Time
	handled   map[string]time.Time
	dups      int
	count     atomic.Int64
}

func run(rate int, dur time.Duration, producers, perTx, concurrency int) (report, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = io.Discard
	tr := &tracker{committed: map[string]time.Time{}, handled: map[string]time.Time{}}

	// The consumer: a CloudEvent function on the framework's server.
	fn := events.Function("bench", slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), func(_ context.Context, m events.Message) error {
		now := time.Now()
		tr.mu.Lock()
		if _, ok := tr.handled[m.ID]; ok {
			tr.dups++
		} else {
			tr.handled[m.ID] = now
		}
		tr.mu.Unlock()
		tr.count.Add(1)
		return nil
	})
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/", fn); err != nil {
		return report{}, err
	}
	port, err := freePort()
	if err != nil {
		return report{}, err
	}
	go func() { log.Fatal(funcframework.StartHostPort("127.0.0.1", strconv.Itoa(port))) }()
	url := "http://127.0.0.1:" + strconv.Itoa(port)

	stack := infra.MustLoad()
	srv := devbroker.Embedded()
	defer srv.Close()
	client, err := relay.DialAddr(ctx, stack.Project, srv.Addr)
	if err != nil {
		return report{}, err
	}
	defer client.Close()
	if err := devbroker.Provision(ctx, client, stack.Project, stack, nil); err != nil {
		return report{}, err
	}
	dir, err := os.MkdirTemp("", "eventsbench")
	if err != nil {
		return report{}, err
	}
	defer os.RemoveAll(dir)
	db, err := store.OpenSQLite(ctx, filepath.Join(dir, "outbox.db"), outbox.Migrations())
	if err != nil {
		return report{}, err
	}
	defer db.Close()

	tr2 := &http.Transport{MaxIdleConnsPerHost: concurrency}
	// Failed deliveries are worth seeing: they are what a lost event would
	// have gone through.
	warn := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bridge := &devbroker.Bridge{Client: client, Project: stack.Project, Stack: stack, URL: func(string) string { return url },
		Concurrency: concurrency, HTTP: &http.Client{Transport: tr2}, Log: warn}
	var wg sync.WaitGroup
	wg.Go(func() { bridge.Run(ctx) })
	rl := relay.New(outbox.SQLite(db), client, warn, time.Second)
	wg.Go(func() { rl.Run(ctx) })
	waitUp(url)

	// Producers: paced, perTx events per transaction.
	start := time.Now()
	total := int(float64(rate) * dur.Seconds())
	var next atomic.Int64
	var pwg sync.WaitGroup
	for range producers {
		pwg.Go(func() {
			for {
				first := int(next.Add(int64(perTx))) - perTx
				if first >= total {
					return
				}
				due := start.Add(time.Duration(float64(first) / float64(rate) * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				var ids []string
				for i := first; i < min(first+perTx, total); i++ {
					ids = append(ids, "evt-"+strconv.Itoa(i))
				}
				err := store.InTx(ctx, db, func(tx *sql.Tx) error {
					for _, id := range ids {
						_, err := outbox.Append(ctx, tx, outbox.Event{ID: id, Type: outbox.TypeOrderConfirmed, Source: "//bench",
							Subject: id, Data: &eventsv1.OrderConfirmed{OrderId: id}})
						if err != nil {
							return err
						}
					}
					return nil
				})
				now := time.Now()
				if err != nil {
					log.Fatalf("commit %v: %v", ids, err)
				}
				tr.mu.Lock()
				for _, id := range ids {
					tr.committed[id] = now
				}
				tr.mu.Unlock()
			}
		})
	}
	pwg.Wait()
	produced := time.Since(start)
	lastCommit := time.Now()

	// Wait for every event, or give up when nothing arrives for 10 s.
	last, lastChange := tr.count.Load(), time.Now()
	for int(tr.count.Load()) < total && time.Since(lastChange) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
		if n := tr.count.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	unsent, err := outbox.Unsent(context.Background(), db, total)
	if err != nil {
		return report{}, err
	}
	cancel()
	wg.Wait()

	tr.mu.Lock()
	defer tr.mu.Unlock()
	var lags []float64
	var lastHandled time.Time
	lost := 0
	for id, c := range tr.committed {
		h, ok := tr.handled[id]
		if !ok {
			if lost < 5 {
				fmt.Fprintf(os.Stderr, "lost: %s\n", id)
			}
			lost++
			continue
		}
		lags = append(lags, float64(h.Sub(c))/float64(time.Millisecond))
		if h.After(lastHandled) {
			lastHandled = h
		}
	}
	slices.Sort(lags)
	if len(unsent) > 0 {
		fmt.Fprintf(os.Stderr, "%d events were never published (still unsent in the outbox)\n", len(unsent))
	}
	return report{
		Committed: len(tr.committed), Handled: len(tr.handled), Duplicates: tr.dups, Lost: lost,
		Produce: produced, Drain: lastHandled.Sub(lastCommit),
		CommitRate: float64(len(tr.committed)) / produced.Seconds(),
		Throughput: float64(len(tr.handled)) / lastHandled.Sub(start).Seconds(),
		LagP50:     benchkit.Quantile(lags, 0.5), LagP90: benchkit.Quantile(lags, 0.9),
		LagP99: benchkit.Quantile(lags, 0.99), LagMax: lags[len(lags)-1],
	}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitUp(url string) {
	for range 1000 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
