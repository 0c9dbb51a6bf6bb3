package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/functions/imaging"
	"github.com/shopfn/shopfn/functions/invoicing"
	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/devbroker"
	"github.com/shopfn/shopfn/shared/events/relay"
)

// broker is the Pub/Sub of a dev run: the embedded pstest broker with the
// push bridge, or the emulator (PUBSUB_EMULATOR_HOST), which pushes by
// itself.
type broker struct {
	client   *pubsub.Client
	bridge   *devbroker.Bridge // nil with the emulator
	close    func()
	describe string
}

// startBroker provisions the stack's topics and subscriptions and sets
// o.events and o.project for the publishers.
func startBroker(ctx context.Context, log *slog.Logger, o *devOptions) (*broker, error) {
	stack := infra.MustLoad()
	o.project = envOr("GOOGLE_CLOUD_PROJECT", stack.Project)
	functionURL := func(name string) string { return "http://" + o.endpoints[name] }
	if host := os.Getenv("PUBSUB_EMULATOR_HOST"); host != "" {
		c, err := pubsub.NewClient(ctx, o.project)
		if err != nil {
			return nil, fmt.Errorf("pubsub emulator at %s: %w", host, err)
		}
		if err := devbroker.Provision(ctx, c, o.project, stack, functionURL); err != nil {
			c.Close()
			return nil, fmt.Errorf("pubsub emulator at %s: %w", host, err)
		}
		o.events = "pubsub"
		o.pushAuth = events.PushAuthNone // the emulator cannot sign its pushes
		return &broker{client: c, close: func() { c.Close() },
			describe: fmt.Sprintf("the emulator at %s (PUBSUB_EMULATOR_HOST), project %s, pushing to the functions", host, o.project)}, nil
	}
	srv := devbroker.Embedded()
	c, err := relay.DialAddr(ctx, o.project, srv.Addr)
	if err != nil {
		srv.Close()
		return nil, err
	}
	if err := devbroker.Provision(ctx, c, o.project, stack, nil); err != nil {
		c.Close()
		srv.Close()
		return nil, err
	}
	o.events = srv.Addr
	// Pushes carry a token of the push identity, signed with the dev key,
	// which the functions verify (SHOPFN_PUSH_AUTH=shopfn).
	pushCreds, err := serviceCredentials(o.dataDir, events.PushIdentity)
	if err != nil {
		c.Close()
		srv.Close()
		return nil, err
	}
	return &broker{
		client: c,
		bridge: &devbroker.Bridge{Client: c, Project: o.project, Stack: stack, URL: functionURL, Credentials: pushCreds, HTTP: &http.Client{}, Log: log},
		close: func() {
			c.Close()
			srv.Close()
		},
		describe: fmt.Sprintf("embedded broker at %s, project %s, push bridge to the functions (set PUBSUB_EMULATOR_HOST to use the emulator)", srv.Addr, o.project),
	}, nil
}

// run delivers pushes (embedded broker) until ctx ends, then closes.
func (b *broker) run(ctx context.Context) error {
	defer b.close()
	if b.bridge != nil {
		return b.bridge.Run(ctx)
	}
	<-ctx.Done()
	return nil
}

// functionEnv names the function a child process of `shopfn dev` runs.
const functionEnv = "SHOPFN_RUN_FUNCTION"

// functionMains are the functions `shopfn dev` runs as child processes.
var functionMains = map[string]func(context.Context) error{
	imaging.Name:   imaging.Main,
	invoicing.Name: invoicing.Main,
}

// runChildFunction runs the function named by $SHOPFN_RUN_FUNCTION and
// exits, when it is set: `shopfn dev` starts functions by running its own
// executable again, so each function has its own process and its own
// functions-framework server, as on Cloud Run.
func runChildFunction() {
	name := os.Getenv(functionEnv)
	if name == "" {
		return
	}
	main, ok := functionMains[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "shopfn: %s=%q names no function\n", functionEnv, name)
		os.Exit(2)
	}
	// shopfn dev stops a function with SIGINT; it drains (see function.Main).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := main(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childStopGrace is how long a function may take to exit after SIGTERM.
const childStopGrace = 5 * time.Second

// runFunctionDev runs a function as a child process on o.port until ctx
// ends. Its settings come through the environment, as in a container.
func runFunctionDev(name string) func(ctx context.Context, o devOptions, log *slog.Logger, _ net.Listener) error {
	return func(ctx context.Context, o devOptions, log *slog.Logger, _ net.Listener) error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		dataDir, err := filepath.Abs(o.dataDir)
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(),
			functionEnv+"="+name,
			"PORT="+strconv.Itoa(o.port),
			"SHOPFN_DATA_DIR="+dataDir,
			"GOOGLE_CLOUD_PROJECT="+o.project,
			"SHOPFN_PUSH_AUTH="+cmp.Or(o.pushAuth, events.PushAuthShopfn),
			// Drain within the time dev waits before killing it.
			"SHOPFN_SHUTDOWN_GRACE="+(childStopGrace-time.Second).String(),
		)
		for dep, addr := range o.endpoints {
			cmd.Env = append(cmd.Env, "SHOPFN_"+strings.ToUpper(dep)+"_ADDR="+addr)
		}
		cmd.Stdout, cmd.Stderr = o.out, o.out
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = childStopGrace
		if err := cmd.Start(); err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it started
			}
			return err
		}
		err = cmd.Wait()
		if ctx.Err() != nil {
			return nil // stopped by us
		}
		if err == nil {
			err = errors.New("exited")
		}
		return err
	}
}

// runSchedules calls the stack's scheduled internal methods on their
// deployables, as Cloud Scheduler does in the cloud, until ctx ends.
func runSchedules(ctx context.Context, o devOptions, log *slog.Logger) {
	creds, err := serviceCredentials(o.dataDir, infra.Scheduler)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("no schedules", "error", err.Error())
		}
		return
	}
	var wg sync.WaitGroup
	for _, s := range infra.MustLoad().Schedules {
		cc, err := dial.Dial(o.endpoints[s.Target], dial.Options{PerRPCCredentials: creds})
		if err != nil {
			log.Warn("schedule not run", "schedule", s.Name, "error", err.Error())
			continue
		}
		wg.Go(func() {
			defer cc.Close()
			every(ctx, s.Every.Duration, func() { callScheduled(ctx, cc, s, log) })
		})
	}
	wg.Wait()
}

// callScheduled invokes a schedule's method with an empty request, as
// `shopfn call` does in the cloud.
func callScheduled(ctx context.Context, cc *grpc.ClientConn, s infra.Schedule, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, s.Every.Duration)
	defer cancel()
	if _, err := invokeEmpty(ctx, cc, s.Method); err != nil && ctx.Err() == nil {
		log.Warn("scheduled call failed", "schedule", s.Name, "error", explain(err))
		return
	}
	log.Debug("scheduled call done", "schedule", s.Name)
}

// every runs f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
