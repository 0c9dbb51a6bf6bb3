// Command makevariants runs variants.Make on one file and writes the
// variants next to each other: the process that bench/cmd/imagebench times
// against vipsthumbnail. It lives under functions/imaging so that it may
// import the internal package.
//
// Usage:
//
//	makevariants -in photo.jpg -out DIR      # one Make call, writes DIR/ours-NAME.jpg
//	makevariants -in photo.jpg -steps 10     # time Make's steps in-process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/shopfn/shopfn/functions/imaging/internal/variants"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "makevariants:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("makevariants", flag.ContinueOnError)
	in := fs.String("in", "", "input image (required)")
	out := fs.String("out", "", "directory for the variants")
	steps := fs.Int("steps", 0, "time Make's steps this many times instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("-in is required")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	if *steps > 0 {
		return timeSteps(ctx, stdout, data, *steps)
	}
	vs, err := variants.Make(ctx, data, variants.Options{})
	if err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	for _, v := range vs {
		if err := os.WriteFile(filepath.Join(*out, "ours-"+v.Name+".jpg"), v.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// timeSteps runs Make n times with a Trace and prints each step's median.
func timeSteps(ctx context.Context, stdout io.Writer, data []byte, n int) error {
	times := map[string][]float64{}
	var order []string
	var totals []float64
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for range n {
		start := time.Now()
		_, err := variants.Make(ctx, data, variants.Options{Trace: func(step string, d time.Duration) {
			if _, ok := times[step]; !ok {
				order = append(order, step)
			}
			times[step] = append(times[step], ms(d))
		}})
		if err != nil {
			return err
		}
		totals = append(totals, ms(time.Since(start)))
	}
	median := func(xs []float64) float64 {
		s := slices.Sorted(slices.Values(xs))
		return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
	}
	fmt.Fprintf(stdout, "in-process steps of Make, median of %d:\n", n)
	for _, s := range order {
		fmt.Fprintf(stdout, "  %-10s %7.1f ms\n", s, median(times[s]))
	}
	fmt.Fprintf(stdout, "  %-10s %7.1f ms\n", "total", median(totals))
	return nil
}
