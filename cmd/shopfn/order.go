package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shopfn/shopfn/functions/order"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/store"
)

func runOrderDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg order.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	o.useAddr(&cfg.CatalogAddr, "catalog")
	o.useAddr(&cfg.InventoryAddr, "inventory")
	o.useAddr(&cfg.PaymentAddr, "payment")
	cfg.Events, cfg.PubSubProject = o.events, o.project
	return order.Run(ctx, cfg, log, lis)
}

// withOrders calls fn with an order service client. Everything but
// CreateOrder is safe to retry; CreateOrder is too, thanks to its
// idempotency key, which the CLI sends with every attempt.
func withOrders(addr string, fn func(orderv1.OrderServiceClient) error) error {
	return withClient(addr, dial.Options{Idempotent: []string{
		orderv1.OrderService_CreateOrder_FullMethodName,
		orderv1.OrderService_GetOrder_FullMethodName,
		orderv1.OrderService_ListOrders_FullMethodName,
		orderv1.OrderService_CancelOrder_FullMethodName,
	}}, orderv1.NewOrderServiceClient, fn)
}

func newOrderCmd() *cobra.Command {
	var addr, userAddr string
	cmd := &cobra.Command{
		Use:   "order",
		Short: "Place, follow and cancel orders (as the logged-in user)",
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_ORDER_ADDR", defaultAddr("order")), "order service address [$SHOPFN_ORDER_ADDR]")
	cmd.PersistentFlags().StringVar(&userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")), "user service the session was opened with [$SHOPFN_USER_ADDR]")

	var (
		items []string
		token string
		key   string
		watch bool
		addrF addressFlags
	)
	create := &cobra.Command{
		Use:   "create --item PRODUCT_ID[:QTY]... --token TOKEN --name … --line1 … --city … --country CC",
		Short: "Place an order and print its outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			lines, err := parseItems(items)
			if err != nil {
				return err
			}
			if key == "" {
				key = store.NewID("key")
			}
			req := &orderv1.CreateOrderRequest{IdempotencyKey: key, Lines: lines, ShippingAddress: addrF.address(), PaymentToken: token}
			return withOrders(addr, func(c orderv1.OrderServiceClient) error {
				resp, err := c.CreateOrder(ctx, req)
				if err != nil {
					return err
				}
				if watch && !terminal(resp.GetOrder().GetState()) {
					return watchOrder(ctx, c, resp.GetOrder().GetId(), cmd.OutOrStdout())
				}
				return printProto(cmd.OutOrStdout(), resp.GetOrder())
			})
		},
	}
	create.Flags().StringSliceVar(&items, "item", nil, "product id and quantity, e.g. prd_x:2 (repeatable; required)")
	create.Flags().StringVar(&token, "token", "tok_visa", "payment token (see the README's test tokens)")
	create.Flags().StringVar(&key, "idempotency-key", "", "reuse to retry the same order safely (default: a new key)")
	create.Flags().BoolVar(&watch, "watch", false, "follow the order until it is confirmed or cancelled")
	addrF.register(create)
	create.MarkFlagRequired("item")

	get := &cobra.Command{
		Use:   "get ORDER_ID",
		Short: "Show an order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withOrders(addr, func(c orderv1.OrderServiceClient) error {
				resp, err := c.GetOrder(ctx, &orderv1.GetOrderRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetOrder())
			})
		},
	}

	var pageSize int32
	var pageToken, forUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "List orders, newest first (admins: everyone's, or --user)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withOrders(addr, func(c orderv1.OrderServiceClient) error {
				resp, err := c.ListOrders(ctx, &orderv1.ListOrdersRequest{PageSize: pageSize, PageToken: pageToken, UserId: forUser})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp)
			})
		},
	}
	list.Flags().Int32Var(&pageSize, "page-size", 20, "orders per page (at most 100)")
	list.Flags().StringVar(&pageToken, "page-token", "", "next_page_token of the previous page")
	list.Flags().StringVar(&forUser, "user", "", "admins: only this user's orders")

	cancel := &cobra.Command{
		Use:   "cancel ORDER_ID",
		Short: "Cancel an order (stock is released, the payment voided or refunded)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withOrders(addr, func(c orderv1.OrderServiceClient) error {
				resp, err := c.CancelOrder(ctx, &orderv1.CancelOrderRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetOrder())
			})
		},
	}

	watchCmd := &cobra.Command{
		Use:   "watch ORDER_ID",
		Short: "Follow an order live until it is confirmed or cancelled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withOrders(addr, func(c orderv1.OrderServiceClient) error {
				return watchOrder(ctx, c, args[0], cmd.OutOrStdout())
			})
		},
	}

	cmd.AddCommand(create, get, list, cancel, watchCmd)
	return cmd
}

// watchOrder prints one line per state of the order until the stream ends.
func watchOrder(ctx context.Context, c orderv1.OrderServiceClient, id string, w io.Writer) error {
	stream, err := c.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		o := resp.GetOrder()
		line := fmt.Sprintf("%s  %-10s  v%d  total %s", o.GetUpdateTime().AsTime().Local().Format("15:04:05.000"),
			strings.TrimPrefix(o.GetState().String(), "ORDER_STATE_"), o.GetVersion(), formatMoney(o.GetTotal()))
		if o.GetState() == orderv1.OrderState_ORDER_STATE_CANCELLED {
			line += fmt.Sprintf("  reason %s: %s", o.GetCancelReason(), o.GetCancelMessage())
		}
		fmt.Fprintln(w, line)
	}
}

func terminal(s orderv1.OrderState) bool {
	return s == orderv1.OrderState_ORDER_STATE_CONFIRMED || s == orderv1.OrderState_ORDER_STATE_CANCELLED
}

// formatMoney prints minor units with two decimals (right for most
// currencies; the amount in minor units is the truth).
func formatMoney(m *commonv1.Money) string {
	return fmt.Sprintf("%d.%02d %s", m.GetAmountMinor()/100, m.GetAmountMinor()%100, m.GetCurrencyCode())
}

// parseItems reads PRODUCT_ID[:QTY] flags.
func parseItems(items []string) ([]*orderv1.LineItem, error) {
	var lines []*orderv1.LineItem
	for _, it := range items {
		id, qty, found := strings.Cut(it, ":")
		n := int64(1)
		if found {
			var err error
			if n, err = strconv.ParseInt(qty, 10, 32); err != nil || n <= 0 {
				return nil, fmt.Errorf("--item %q: quantity must be a positive number", it)
			}
		}
		lines = append(lines, &orderv1.LineItem{ProductId: id, Quantity: int32(n)})
	}
	return lines, nil
}

// addressFlags are the shipping address flags of `order create`.
type addressFlags struct {
	name, line1, line2, city, region, postal, country string
}

func (a *addressFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.name, "name", "", "recipient's name (required)")
	cmd.Flags().StringVar(&a.line1, "line1", "", "street and number (required)")
	cmd.Flags().StringVar(&a.line2, "line2", "", "second address line")
	cmd.Flags().StringVar(&a.city, "city", "", "city (required)")
	cmd.Flags().StringVar(&a.region, "region", "", "region or state")
	cmd.Flags().StringVar(&a.postal, "postal-code", "", "postal code")
	cmd.Flags().StringVar(&a.country, "country", "", "ISO country code, e.g. FR (required)")
}

func (a *addressFlags) address() *commonv1.Address {
	return &commonv1.Address{Name: a.name, Line1: a.line1, Line2: a.line2, City: a.city, Region: a.region, PostalCode: a.postal, CountryCode: strings.ToUpper(a.country)}
}
