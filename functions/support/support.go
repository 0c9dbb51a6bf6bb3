// Package support is the support deployable: customer-support chat rooms
// between customers and agents, one per order ("order:<id>") or ticket
// ("ticket:<id>").
//
// Messages are stored in SQLite, or in Firestore with SHOPFN_STORE=firestore
// (each one in its room's sequence, before anyone receives it), and fanned
// out by a chat.Hub. With SQLite that is supportdb.Hub, in process: one
// instance owns its SQLite file, so it serves every participant of its
// rooms. With Firestore it is supportfs.Hub: each instance listens to the
// messages of the rooms its participants joined, so a message stored by
// one instance reaches the participants of every instance, and the service
// scales out.
//
// The same code runs as its own container (functions/support/cmd),
// in-process under `shopfn dev`, and in tests: Run takes a listener and
// stops when its context ends.
package support

import (
	"context"
	"log/slog"
	"net"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/functions/support/internal/clients"
	"github.com/shopfn/shopfn/functions/support/internal/supportapi"
	"github.com/shopfn/shopfn/functions/support/internal/supportdb"
	"github.com/shopfn/shopfn/functions/support/internal/supportfs"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/serve"
)

// Name is the deployable's name.
const Name = "support"

// Config is the support deployable's configuration, read from the
// environment.
type Config struct {
	serve.Platform
	chat.Limits

	// Database is the SQLite file; empty means support.db in DataDir. With
	// SHOPFN_STORE=firestore, rooms and messages are in the Firestore
	// database FirestoreDatabaseName("support") instead.
	Database string `envconfig:"SHOPFN_SUPPORT_DB"`
	// OrderAddr is the order service, asked whether a customer may join an
	// order's room: host:port (plaintext) or https://host.
	OrderAddr string `envconfig:"SHOPFN_ORDER_ADDR" default:"localhost:9005"`
	// UserAddr is the user service, asked for participants' display names.
	UserAddr string `envconfig:"SHOPFN_USER_ADDR" default:"localhost:9001"`
	// OutgoingBuffer is how many of a room's messages may wait for one
	// participant before it is disconnected as a slow consumer. 256 rides
	// out a burst in a busy room over a slow mobile link (on top of what the
	// transport buffers), and costs 2 KiB per participant.
	OutgoingBuffer int `envconfig:"SHOPFN_SUPPORT_OUTGOING_BUFFER" default:"256"`
}

// Policy is who may call which method. Both are for signed-in users;
// the handlers restrict customers to their own rooms.
func Policy() auth.Policy {
	return auth.Policy{
		supportv1.SupportService_Chat_FullMethodName:    auth.Customer,
		supportv1.SupportService_History_FullMethodName: auth.Customer,
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

// chatStore is what Run needs of a store: supportdb.Store (SQLite, the
// default) or supportfs.Store (SHOPFN_STORE=firestore).
type chatStore interface {
	chat.Store
	serve.Dependency
}

// Run serves the support service on lis until ctx ends. Messages are kept
// in SQLite and fanned out in process (supportdb.Hub), or, when cfg.Store
// says so, kept in Firestore and fanned out across instances by Firestore
// listeners (supportfs.Hub).
func Run(ctx context.Context, cfg Config, log *slog.Logger, lis net.Listener) error {
	useFirestore, err := cfg.UsesFirestore()
	if err != nil {
		return err
	}
	// The database opens while the rest starts; calls wait for it.
	var (
		db  chatStore
		hub chat.Hub
	)
	if useFirestore {
		fs := supportfs.Open(ctx, cfg.ProjectID, cfg.FirestoreDatabaseName(Name))
		defer fs.Close()
		fh := supportfs.NewHub(ctx, log, fs, supportdb.NewHub(fs, cfg.OutgoingBuffer))
		defer fh.Close() // before the store closes
		db, hub = fs, fh
	} else {
		sq := supportdb.Open(ctx, cfg.DataFile(cfg.Database, "support.db"))
		defer sq.Close()
		db, hub = sq, supportdb.NewHub(sq, cfg.OutgoingBuffer)
	}

	d, err := serve.Start(ctx, Name, cfg.Platform, log, Policy())
	if err != nil {
		return err
	}
	defer d.Close()
	// The calls carry the end user's own token (see package clients), so
	// the connections have no credentials of their own.
	orderCC, err := d.Dial(cfg.OrderAddr, clients.OrderMethods(), nil)
	if err != nil {
		return err
	}
	userCC, err := d.Dial(cfg.UserAddr, clients.UserMethods(), nil)
	if err != nil {
		return err
	}

	svc := chat.NewService(db, hub, clients.NewOrders(orderCC), clients.NewNames(userCC), cfg.Limits)
	supportv1.RegisterSupportServiceServer(d.Server, supportapi.New(svc, ctx.Done()))
	return d.Server.Serve(ctx, lis, db)
}
