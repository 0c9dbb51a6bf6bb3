// Package benchkit runs shopfn deployables as real processes, the way Cloud
// Run starts them, and measures them: cold start, idle memory, throughput and
// server CPU per RPC. Every figure is meant to be read as a ratio against a
// reference process measured in the same, interleaved run, because absolute
// times on a shared machine swing by tens of percent.
//
// The tools in bench/cmd use it; the deployables it knows are listed in
// package bench/targets.
package benchkit

import (
	"context"

	"google.golang.org/grpc"
)

// Target describes one deployable the benchmarks can build, start and load.
type Target struct {
	// Name identifies the target on the command line.
	Name string
	// Package is the Go package to build, relative to the module root, for
	// example "./bench/bareecho" or "./functions/user/cmd".
	Package string
	// Env is extra environment for the process; the harness sets PORT.
	Env []string
	// Prepare, if not nil, runs once before measuring, with a scratch
	// directory of its own. It returns PerRun, which prepares the fresh
	// working directory of each process start (for example by copying a
	// pre-seeded data directory into it) and returns extra environment.
	// PerRun may be nil. Neither is part of any measured time.
	Prepare func(ctx context.Context, scratch string) (PerRun func(runDir string) ([]string, error), err error)
	// Probe is the first real RPC on a fresh process. The harness calls it
	// repeatedly, each attempt with a short timeout, until it returns nil;
	// the cold start ends when it does.
	Probe func(ctx context.Context, cc *grpc.ClientConn) error
	// Call prepares the throughput load on one client connection (it may do
	// per-connection set-up first) and returns the request to repeat. The
	// returned function is called concurrently by every worker sharing the
	// connection, so it must be safe for concurrent use.
	Call func(ctx context.Context, cc *grpc.ClientConn) (func(context.Context) error, error)
}
