// Package user is the user deployable: accounts, credentials and the access
// tokens every other service verifies.
//
// The same code runs as its own container (functions/user/cmd), in-process
// under `shopfn dev`, and in tests: Run takes a listener and stops when its
// context ends.
package user

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	"github.com/shopfn/shopfn/functions/user/internal/accountdb"
	"github.com/shopfn/shopfn/functions/user/internal/accountfs"
	"github.com/shopfn/shopfn/functions/user/internal/userapi"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "user"

// Config is the user deployable's configuration, read from the environment.
type Config struct {
	serve.Platform
	account.LoginLimits

	// Database is the SQLite file; empty means user.db in DataDir. Unused
	// with SHOPFN_STORE=firestore.
	Database string `envconfig:"SHOPFN_USER_DB"`
	// CacheSize is how many accounts read by id are kept in memory (0: none).
	// An account is a few hundred bytes. SQLite only: with Firestore
	// several instances write, so nothing is cached.
	CacheSize int `envconfig:"SHOPFN_USER_CACHE_SIZE" default:"10000"`
	// AdminEmails are emails that become admins when they register. Keep it
	// empty in public deployments until the admins have registered.
	AdminEmails []string `envconfig:"SHOPFN_ADMIN_EMAILS"`
}

// Policy is who may call which method.
func Policy() auth.Policy {
	return auth.Policy{
		userv1.UserService_Register_FullMethodName:      auth.Public,
		userv1.UserService_Login_FullMethodName:         auth.Public,
		userv1.UserService_GetUser_FullMethodName:       auth.Customer,
		userv1.UserService_UpdateProfile_FullMethodName: auth.Customer,
	}
}

// Main runs the deployable as a container: configuration from the
// environment, logs on stdout, the listener on $PORT.
func Main(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return serve.Main(ctx, Name, cfg.Platform, cfg, func(ctx context.Context, log *slog.Logger, lis net.Listener) error {
		return Run(ctx, cfg, log, lis)
	})
}

// Run serves the user service on lis until ctx ends. Accounts are kept in
// SQLite, or in Firestore with SHOPFN_STORE=firestore.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	// The database opens while the rest starts; calls wait for it.
	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	d, err := serve.Start(ctx, Name, cfg.Platform, log, Policy())
	if err != nil {
		return err
	}
	defer d.Close()
	signer := d.Keys.NewSigner(cfg.Auth)
	if signer == nil {
		return fmt.Errorf("%s issues tokens: set SHOPFN_JWT_SIGNING_KEY", Name)
	}
	svc := account.NewService(db, signer, cfg.AdminEmails, cfg.LoginLimits)
	userv1.RegisterUserServiceServer(d.Server, userapi.New(svc, cfg.TrustedProxyHops))
	return d.Server.Serve(ctx, lis, db)
}

// accountStore is what Run needs of a store: the accounts, the readiness
// Serve waits on, and Close.
type accountStore interface {
	account.Store
	serve.Dependency
	Close() error
}

// openStore starts opening the configured store: Firestore when
// SHOPFN_STORE=firestore, else the SQLite file.
func openStore(ctx context.Context, cfg Config) (accountStore, error) {
	fs, err := cfg.UsesFirestore()
	if err != nil {
		return nil, err
	}
	if fs {
		return accountfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name)), nil
	}
	return accountdb.Open(ctx, cfg.DataFile(cfg.Database, "user.db"), cfg.CacheSize), nil
}
