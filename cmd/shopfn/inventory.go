package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	inventoryv1 "github.com/shopfn/shopfn/proto/shopfn/inventory/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
)

// inventoryAddr is where `shopfn dev` serves inventory.
const inventoryAddr = "localhost:9003"

// withInventory calls fn with an inventory client. Every inventory method
// is idempotent (Reserve per order id), so all may be retried. creds, when
// not nil, authenticate every call (internal methods).
func withInventory(addr string, creds credentials.PerRPCCredentials, fn func(inventoryv1.InventoryServiceClient) error) error {
	return withClient(addr, dial.Options{
		Idempotent: []string{
			inventoryv1.InventoryService_SetStock_FullMethodName,
			inventoryv1.InventoryService_GetStock_FullMethodName,
			inventoryv1.InventoryService_Reserve_FullMethodName,
			inventoryv1.InventoryService_Commit_FullMethodName,
			inventoryv1.InventoryService_Release_FullMethodName,
			inventoryv1.InventoryService_ReleaseExpired_FullMethodName,
		},
		PerRPCCredentials: creds,
	}, inventoryv1.NewInventoryServiceClient, fn)
}

func newInventoryCmd() *cobra.Command {
	var addr, userAddr, dataDir string
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Set and read stock; reserve, commit and release it by hand",
		Long: `inventory calls the inventory service.

set needs an admin: log in first (shopfn user login) as an admin account.
get is public. reserve, commit, release and release-expired are internal
methods that other services call; here they use a service token minted
with the signing key of a local shopfn dev (--data-dir), for trying the
order flow by hand.`,
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_INVENTORY_ADDR", inventoryAddr),
		"inventory service address: host:port (plaintext) or https://host (TLS) [$SHOPFN_INVENTORY_ADDR]")
	cmd.PersistentFlags().StringVar(&userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")),
		"user service the saved login came from [$SHOPFN_USER_ADDR]")
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", ".data",
		"data directory of shopfn dev, whose signing key internal methods use")

	// callInternal runs fn with service credentials.
	callInternal := func(fn func(inventoryv1.InventoryServiceClient) error) error {
		creds, err := serviceCredentials(dataDir, order.Name)
		if err != nil {
			return err
		}
		return withInventory(addr, creds, fn)
	}

	set := &cobra.Command{
		Use:   "set SKU ON_HAND",
		Short: "Set the units on hand of a SKU (admin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			onHand, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("ON_HAND %q: want a whole number", args[1])
			}
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withInventory(addr, nil, func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.SetStock(ctx, &inventoryv1.SetStockRequest{Sku: args[0], OnHand: onHand})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetStock())
			})
		},
	}

	get := &cobra.Command{
		Use:   "get SKU",
		Short: "Show the stock of a SKU",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withInventory(addr, nil, func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.GetStock(cmd.Context(), &inventoryv1.GetStockRequest{Sku: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetStock())
			})
		},
	}

	reserve := &cobra.Command{
		Use:   "reserve ORDER_ID SKU=QUANTITY...",
		Short: "Hold units for an order, all lines or none (internal)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lines, err := parseInventoryLines(args[1:])
			if err != nil {
				return err
			}
			return callInternal(func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.Reserve(cmd.Context(), &inventoryv1.ReserveRequest{OrderId: args[0], Lines: lines})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetReservation())
			})
		},
	}

	commit := &cobra.Command{
		Use:   "commit ORDER_ID",
		Short: "Turn an order's reservation into a sale (internal)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callInternal(func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.Commit(cmd.Context(), &inventoryv1.CommitRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetReservation())
			})
		},
	}

	release := &cobra.Command{
		Use:   "release ORDER_ID",
		Short: "Give an order's units back; restocks a committed one (internal)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callInternal(func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.Release(cmd.Context(), &inventoryv1.ReleaseRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp)
			})
		},
	}

	var limit int32
	releaseExpired := &cobra.Command{
		Use:   "release-expired",
		Short: "Release reservations past their expiry time (internal; shopfn dev does it every 30s)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return callInternal(func(c inventoryv1.InventoryServiceClient) error {
				resp, err := c.ReleaseExpired(cmd.Context(), &inventoryv1.ReleaseExpiredRequest{Limit: limit})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp)
			})
		},
	}
	releaseExpired.Flags().Int32Var(&limit, "limit", 0, "most reservations to release (0: the server's default, 500)")

	cmd.AddCommand(set, get, reserve, commit, release, releaseExpired)
	return cmd
}

// parseInventoryLines reads SKU=QUANTITY arguments.
func parseInventoryLines(args []string) ([]*inventoryv1.Line, error) {
	lines := make([]*inventoryv1.Line, len(args))
	for i, a := range args {
		sku, q, ok := strings.Cut(a, "=")
		n, err := strconv.ParseInt(q, 10, 32)
		if !ok || sku == "" || err != nil {
			return nil, fmt.Errorf("line %q: want SKU=QUANTITY, e.g. MUG-01=2", a)
		}
		lines[i] = &inventoryv1.Line{Sku: sku, Quantity: int32(n)}
	}
	return lines, nil
}

// runInventoryDev runs the inventory service under `shopfn dev`; the
// schedules of infra/stack.yaml release expired reservations.
func runInventoryDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg inventory.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	cfg.Events, cfg.PubSubProject = o.events, o.project
	return inventory.Run(ctx, cfg, log, lis)
}
