package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/shopfn/shopfn/functions/gateway"
	"github.com/shopfn/shopfn/shared/config"
)

// runGatewayDev runs the HTTP/JSON gateway under `shopfn dev`, in front of
// the services of the same run.
func runGatewayDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg gateway.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	o.useAddr(&cfg.UserAddr, "user")
	o.useAddr(&cfg.CatalogAddr, "catalog")
	o.useAddr(&cfg.InventoryAddr, "inventory")
	o.useAddr(&cfg.PaymentAddr, "payment")
	o.useAddr(&cfg.OrderAddr, "order")
	o.useAddr(&cfg.SupportAddr, "support")
	return gateway.Run(ctx, cfg, log, lis)
}

// gatewayTry is the TRY column of the gateway's row in the endpoints table
// `shopfn dev` prints: its OpenAPI document.
func gatewayTry(addr string) string {
	return "curl http://" + addr + "/openapi.json"
}
