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

	// Database is the SQLite file; empty means user.db in DataDir.
	Database string `envconfig:"SHOPFN_USER_DB"`
	// CacheSize is how many accounts read by id are kept in memory (0: none).
	// An account is a few hundred bytes.
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

// Run serves the user service on lis until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	path := cfg.DataFile(cfg.Database, "user.db")
	// The database opens while the rest starts; calls wait for it.
	db := accountdb.Open(ctx, path, cfg.CacheSize)
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
