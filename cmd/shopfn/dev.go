package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/gateway"
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// deployable is one part of the system as `shopfn dev` runs it: an entry
// of infra/stack.yaml and how to run it here.
type deployable struct {
	infra.Deployable
	port int
	// run serves the deployable on lis until ctx ends. dataDir is shared by
	// all deployables (each keeps its own files in it). Functions run as
	// child processes on port; lis is nil for them.
	run func(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error
}

// devOptions are the settings `shopfn dev` gives every deployable on top of
// their environment defaults.
type devOptions struct {
	dataDir     string
	adminEmails []string
	port        int
	// endpoints are the addresses of every deployable, so they can call
	// each other.
	endpoints map[string]string
	// events is where publishers send their outbox (relay.Outbox.Events).
	events  string
	project string
	// pushAuth is how the functions authenticate pushes (SHOPFN_PUSH_AUTH).
	pushAuth string
	// out receives the functions' logs.
	out io.Writer
}

// useAddr points *addr at the named deployable of this dev run, if it runs.
func (o devOptions) useAddr(addr *string, name string) {
	if a, ok := o.endpoints[name]; ok {
		*addr = a
	}
}

// grpcRunners run the gRPC deployables in this process.
var grpcRunners = map[string]func(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error{
	user.Name:      runUser,
	catalog.Name:   runCatalogDev,
	inventory.Name: runInventoryDev,
	payment.Name:   runPaymentDev,
	order.Name:     runOrderDev,
	support.Name:   runSupportDev,
}

// httpRunners run the plain HTTP deployables in this process.
var httpRunners = map[string]func(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error{
	gateway.Name: runGatewayDev,
}

// deployables lists what `shopfn dev` starts: every deployable of
// infra/stack.yaml, on its devPort.
func deployables() []deployable {
	var ds []deployable
	for _, d := range infra.MustLoad().Deployables {
		run := grpcRunners[d.Name]
		switch d.Kind {
		case infra.KindFunction:
			run = runFunctionDev(d.Name)
		case infra.KindHTTP:
			run = httpRunners[d.Name]
		}
		if run == nil {
			panic("shopfn dev: no runner for deployable " + d.Name) // caught by the tests
		}
		ds = append(ds, deployable{Deployable: d, port: d.DevPort, run: run})
	}
	return ds
}

func runUser(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg user.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir, cfg.AdminEmails = o.port, o.dataDir, o.adminEmails
	return user.Run(ctx, cfg, log, lis)
}

// defaultAddr is the address `shopfn dev` serves the named deployable on.
func defaultAddr(name string) string {
	if d, ok := infra.MustLoad().Deployable(name); ok {
		return "localhost:" + strconv.Itoa(d.DevPort)
	}
	return ""
}

func newDevCmd() *cobra.Command {
	var (
		dataDir   string
		reset     bool
		host      string
		admins    []string
		logFormat string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run every deployable on this machine, each on its own port",
		Long: `dev runs every shopfn deployable in this one process, each on its own
port, with SQLite files and a development signing key under the data
directory. Ctrl-C stops everything cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			if reset {
				if err := resetDataDir(dataDir); err != nil {
					return err
				}
			}
			log, err := devLogger(cmd.ErrOrStderr(), logFormat, level)
			if err != nil {
				return err
			}
			return runDev(cmd.Context(), cmd.OutOrStdout(), log, host, devOptions{dataDir: dataDir, adminEmails: admins, out: cmd.ErrOrStderr()}, nil)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".data", "where databases, buckets and the dev key live")
	cmd.Flags().BoolVar(&reset, "reset", false, "delete the data directory first")
	cmd.Flags().StringVar(&host, "host", "localhost", "interface to listen on")
	cmd.Flags().StringSliceVar(&admins, "admin-email", []string{"admin@shopfn.local"}, "emails that become admins when they register")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "text or json (the cloud format)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func devLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
	case "json":
		return telemetry.NewLogger(w, level, ""), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// resetDataDir deletes the data directory, refusing anything that does not
// look like one (a typo must not delete a home directory).
func resetDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if home, _ := os.UserHomeDir(); abs == "/" || abs == home {
		return fmt.Errorf("--reset: refusing to delete %s", abs)
	}
	entries, err := os.ReadDir(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if !(strings.HasSuffix(n, ".db") || strings.HasSuffix(n, ".db-wal") || strings.HasSuffix(n, ".db-shm") ||
			strings.HasSuffix(n, ".pem") || e.IsDir()) {
			return fmt.Errorf("--reset: %s holds %s, which shopfn did not write; delete it by hand", abs, n)
		}
	}
	return os.RemoveAll(abs)
}

// runDev starts the broker, every deployable and the schedules, prints the
// endpoints, and waits for ctx to end or a deployable to fail; then it
// stops them all. ports, when not nil, replaces the default ports (0 picks
// a free one).
func runDev(ctx context.Context, out io.Writer, log *slog.Logger, host string, o devOptions, ports []int) error {
	ds := deployables()
	listeners := make([]net.Listener, len(ds))
	closeAll := func() {
		for _, l := range listeners {
			if l != nil {
				l.Close()
			}
		}
	}
	for i := range ds {
		if ports != nil {
			ds[i].port = ports[i]
		}
		lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(ds[i].port)))
		if err != nil {
			closeAll()
			return fmt.Errorf("%s: %w (is another shopfn dev running?)", ds[i].Name, err)
		}
		listeners[i] = lis
		ds[i].port = lis.Addr().(*net.TCPAddr).Port
		if ds[i].Kind == infra.KindFunction {
			lis.Close() // the function's own process listens on the port
			listeners[i] = nil
		}
	}
	// The development key exists before anything starts, so that the
	// functions, the schedules and the CLI find the one the services use.
	var authCfg auth.Config
	if err := config.Load(&authCfg); err != nil {
		closeAll()
		return err
	}
	if _, err := auth.LoadKeys(authCfg, o.dataDir); err != nil {
		closeAll()
		return err
	}
	o.endpoints = make(map[string]string, len(ds))
	for _, d := range ds {
		o.endpoints[d.Name] = net.JoinHostPort(host, strconv.Itoa(d.port))
	}
	if o.out == nil {
		o.out = io.Discard
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		stop() // one failing part stops the others
	}
	// The broker outlives the deployables, so that their relays can flush
	// when they stop.
	brokerCtx, stopBroker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBroker()
	b, err := startBroker(brokerCtx, log.With("service", "pubsub"), &o)
	if err != nil {
		closeAll()
		return err
	}
	brokerDone := make(chan struct{})
	go func() {
		defer close(brokerDone)
		if err := b.run(brokerCtx); err != nil {
			fail(fmt.Errorf("pubsub: %w", err))
		}
	}()
	for i, d := range ds {
		wg.Go(func() {
			opts := o
			opts.port = d.port
			if err := d.run(ctx, opts, log.With("service", d.Name), listeners[i]); err != nil {
				fail(fmt.Errorf("%s: %w", d.Name, err))
			}
		})
	}
	wg.Go(func() { runSchedules(ctx, o, log.With("service", "scheduler")) })
	printEndpoints(out, ds, o, b)
	<-ctx.Done()
	wg.Wait()
	stopBroker()
	<-brokerDone
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fmt.Fprintln(out, "shopfn dev: stopped")
	return nil
}

func printEndpoints(out io.Writer, ds []deployable, o devOptions, b *broker) {
	fmt.Fprintf(out, "shopfn dev: %d deployable(s) running; data in %s\n\n", len(ds), o.dataDir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tKIND\tENDPOINT\tTRY")
	for _, d := range ds {
		addr := o.endpoints[d.Name]
		if d.Kind == infra.KindHTTP {
			fmt.Fprintf(tw, "  %s\t%s\thttp://%s\t%s\n", d.Name, d.Kind, addr, gatewayTry(addr))
			continue
		}
		if d.Kind == infra.KindFunction {
			var topics []string
			for _, s := range infra.MustLoad().PushTo(d.Name) {
				topics = append(topics, s.Topic)
			}
			fmt.Fprintf(tw, "  %s\t%s\thttp://%s\tpushed %s events\n", d.Name, d.Kind, addr, strings.Join(topics, ", "))
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tgrpcurl -plaintext %s list\n", d.Name, d.Kind, addr, addr)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nPub/Sub: %s\nAdmins: register %s to get an admin account.\nCtrl-C stops everything.\n",
		b.describe, strings.Join(o.adminEmails, ", "))
}
