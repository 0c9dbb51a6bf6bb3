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
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// deployable is one part of the system as `shopfn dev` runs it.
type deployable struct {
	name string
	kind string // "grpc" or "function"
	port int
	// run serves the deployable on lis until ctx ends. dataDir is shared by
	// all deployables (each keeps its own files in it).
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
}

// useAddr points *addr at the named deployable of this dev run, if it runs.
func (o devOptions) useAddr(addr *string, name string) {
	if a, ok := o.endpoints[name]; ok {
		*addr = a
	}
}

// deployables lists what `shopfn dev` starts, with the ports the client
// commands default to. Later deployables take the next ports.
func deployables() []deployable {
	return []deployable{
		{name: user.Name, kind: "grpc", port: 9001, run: runUser},
		{name: catalog.Name, kind: "grpc", port: 9002, run: runCatalogDev},
		{name: inventory.Name, kind: "grpc", port: 9003, run: runInventoryDev},
		{name: payment.Name, kind: "grpc", port: 9004, run: runPaymentDev},
		{name: order.Name, kind: "grpc", port: 9005, run: runOrderDev},
		{name: support.Name, kind: "grpc", port: 9006, run: runSupportDev},
	}
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
	for _, d := range deployables() {
		if d.name == name {
			return "localhost:" + strconv.Itoa(d.port)
		}
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
			return runDev(cmd.Context(), cmd.OutOrStdout(), log, host, devOptions{dataDir: dataDir, adminEmails: admins}, nil)
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

// runDev starts every deployable, prints the endpoints, and waits for ctx
// to end or a deployable to fail; then it stops them all. ports, when not
// nil, replaces the default ports (0 picks a free one).
func runDev(ctx context.Context, out io.Writer, log *slog.Logger, host string, o devOptions, ports []int) error {
	ds := deployables()
	listeners := make([]net.Listener, len(ds))
	for i := range ds {
		if ports != nil {
			ds[i].port = ports[i]
		}
		lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(ds[i].port)))
		if err != nil {
			for _, l := range listeners[:i] {
				l.Close()
			}
			return fmt.Errorf("%s: %w (is another shopfn dev running?)", ds[i].name, err)
		}
		listeners[i] = lis
		ds[i].port = lis.Addr().(*net.TCPAddr).Port
	}
	o.endpoints = make(map[string]string, len(ds))
	for _, d := range ds {
		o.endpoints[d.name] = net.JoinHostPort(host, strconv.Itoa(d.port))
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := o
			opts.port = d.port
			if err := d.run(ctx, opts, log.With("service", d.name), listeners[i]); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", d.name, err))
				mu.Unlock()
				stop() // one failing deployable stops the others
			}
		}()
	}
	printEndpoints(out, host, ds, o)
	<-ctx.Done()
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fmt.Fprintln(out, "shopfn dev: stopped")
	return nil
}

func printEndpoints(out io.Writer, host string, ds []deployable, o devOptions) {
	fmt.Fprintf(out, "shopfn dev: %d deployable(s) running; data in %s\n\n", len(ds), o.dataDir)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tKIND\tENDPOINT\tTRY")
	for _, d := range ds {
		addr := net.JoinHostPort(host, strconv.Itoa(d.port))
		fmt.Fprintf(tw, "  %s\t%s\t%s\tgrpcurl -plaintext %s list\n", d.name, d.kind, addr, addr)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nAdmins: register %s to get an admin account.\nCtrl-C stops everything.\n", strings.Join(o.adminEmails, ", "))
}
