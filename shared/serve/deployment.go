package serve

import (
	"context"

	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/telemetry"
)

// Deployment is what every deployable's Run sets up the same way: its
// telemetry, its JWT keys, its server with its access policy, and its
// connections to the deployables it calls. Run creates the store first (it
// opens in the background), then the Deployment, registers its service on
// Server, and serves.
type Deployment struct {
	Name      string
	Platform  Platform
	Telemetry *telemetry.Providers
	Keys      auth.Keys
	Server    *Server

	conns []*grpc.ClientConn
}

// Start sets up the deployable called name. Close it when Run returns.
func Start(ctx context.Context, name string, p Platform, log *slog.Logger, policy auth.Policy) (*Deployment, error) {
	d, err := StartClient(ctx, name, p)
	if err != nil {
		return nil, err
	}
	// Internal methods answer the callers the stack lists, and no other
	// service; a deployable the stack does not know keeps the looser rule.
	// The stack is read on the first internal call, off the cold start.
	callers := func() []string {
		stack, err := infra.Load()
		if err != nil {
			return []string{} // a broken stack (the tests catch it) admits no service
		}
		sd, ok := stack.Deployable(name)
		if !ok {
			return nil
		}
		return append([]string{}, sd.Callers...)
	}
	d.Server = New(p.Config, Options{
		Name: name, Logger: log, Telemetry: d.Telemetry, Policy: policy,
		Verifier: d.Keys.NewVerifier(p.Auth), Auth: p.Auth, Callers: callers,
	})
	return d, nil
}

// StartClient is Start for a deployable that serves no gRPC (a CloudEvent
// function): telemetry, keys and connections, no Server.
func StartClient(ctx context.Context, name string, p Platform) (*Deployment, error) {
	tel, err := telemetry.Setup(ctx, name, p.Telemetry)
	if err != nil {
		return nil, err
	}
	keys, err := auth.LoadKeys(p.Auth, p.DataDir)
	if err != nil {
		return nil, errors.Join(err, tel.Shutdown(ctx))
	}
	return &Deployment{Name: name, Platform: p, Telemetry: tel, Keys: keys}, nil
}

// DataFile is the path of a file of the deployable's: override when set,
// else name in the data directory.
func (p Platform) DataFile(override, name string) string {
	if override != "" {
		return override
	}
	return filepath.Join(p.DataDir, name)
}

// Store kinds (Platform.Store).
const (
	StoreSQLite    = "sqlite"
	StoreFirestore = "firestore"
)

// UsesFirestore reports whether the deployable keeps its data in
// Firestore, and fails on an unknown Store setting.
func (p Platform) UsesFirestore() (bool, error) {
	switch p.Store {
	case "", StoreSQLite:
		return false, nil
	case StoreFirestore:
		return true, nil
	}
	return false, fmt.Errorf("SHOPFN_STORE=%q: want %s or %s", p.Store, StoreSQLite, StoreFirestore)
}

// FirestoreDatabaseName is the deployable's Firestore database: the
// FirestoreDatabase setting, else "shopfn-<deployable>" as infra/terraform
// names them.
func (p Platform) FirestoreDatabaseName(deployable string) string {
	if p.FirestoreDatabase != "" {
		return p.FirestoreDatabase
	}
	return "shopfn-" + deployable
}

// Bucket is the gocloud.dev/blob URL of a bucket of the deployable's:
// override when set (gs://… in the cloud), else the directory name in the
// data directory, created on first use.
func (p Platform) Bucket(override, name string) (string, error) {
	if override != "" {
		return override, nil
	}
	dir, err := filepath.Abs(filepath.Join(p.DataDir, name))
	if err != nil {
		return "", fmt.Errorf("bucket directory: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(dir), RawQuery: "create_dir=1&no_tmp_dir=1"}
	return u.String(), nil
}

// Dial opens a connection to another deployable at addr with this one's
// telemetry; only the idempotent methods are retried. creds, when not nil,
// authenticate every call (nil: calls carry what their context carries).
// Close closes it.
func (d *Deployment) Dial(addr string, idempotent []string, creds credentials.PerRPCCredentials) (*grpc.ClientConn, error) {
	cc, err := dial.Dial(addr, dial.Options{
		Idempotent: idempotent, PerRPCCredentials: creds,
		IDTokens:       d.Platform.IDTokens && strings.HasPrefix(addr, "https://"),
		TracerProvider: d.Telemetry.Tracer, MeterProvider: d.Telemetry.Meter, Propagators: d.Telemetry.Propagator,
		PropagateOnly: !d.Telemetry.Exports(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", d.Name, addr, err)
	}
	d.conns = append(d.conns, cc)
	return cc, nil
}

// ServiceCredentials are this deployable's credentials for calling other
// services' internal methods. They need the signing key (the dev key
// locally; in the cloud, service identity tokens take their place).
func (d *Deployment) ServiceCredentials() (*auth.ServiceCredentials, error) {
	signer := d.Keys.NewSigner(d.Platform.Auth)
	if signer == nil {
		return nil, fmt.Errorf("%s calls internal methods: it needs SHOPFN_JWT_SIGNING_KEY (or the dev key)", d.Name)
	}
	return auth.NewServiceCredentials(signer, d.Name), nil
}

// Close closes the connections and flushes telemetry.
func (d *Deployment) Close() {
	for _, cc := range d.conns {
		cc.Close()
	}
	d.Telemetry.Shutdown(context.Background())
}
