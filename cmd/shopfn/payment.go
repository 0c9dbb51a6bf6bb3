package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	paymentv1 "github.com/shopfn/shopfn/proto/shopfn/payment/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
)

// runPaymentDev runs the payment deployable under `shopfn dev`.
func runPaymentDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg payment.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	return payment.Run(ctx, cfg, log, lis)
}

// paymentMethods are every payment method: all are idempotent per order id,
// so all may be retried.
var paymentMethods = []string{
	paymentv1.PaymentService_Authorize_FullMethodName,
	paymentv1.PaymentService_Capture_FullMethodName,
	paymentv1.PaymentService_Refund_FullMethodName,
	paymentv1.PaymentService_GetPayment_FullMethodName,
}

// withPayment calls fn with a payment service client whose calls carry
// creds (nil: the context's own token).
func withPayment(addr string, creds *auth.ServiceCredentials, fn func(paymentv1.PaymentServiceClient) error) error {
	o := dial.Options{Idempotent: paymentMethods}
	if creds != nil {
		o.PerRPCCredentials = creds
	}
	return withClient(addr, o, paymentv1.NewPaymentServiceClient, fn)
}

func newPaymentCmd() *cobra.Command {
	var addr, userAddr, dataDir string
	cmd := &cobra.Command{
		Use:   "payment",
		Short: "Look at payments; authorize, capture and refund with test tokens",
		Long: `payment calls the payment service. get is an admin call with the
logged-in user's token. authorize, capture and refund are internal (the
order saga makes them): here they carry a service token signed with the
development key of a local shopfn dev system (--data-dir).

The processor is simulated: tok_visa and tok_mastercard approve,
tok_decline and tok_insufficient_funds decline, tok_unavailable_2 fails the
first two attempts of an order, tok_slow_300ms answers after 300 ms. The full
list is in functions/payment/README.md.`,
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_PAYMENT_ADDR", "localhost:9004"),
		"payment service address: host:port (plaintext) or https://host (TLS) [$SHOPFN_PAYMENT_ADDR]")
	cmd.PersistentFlags().StringVar(&userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")),
		"user service the saved login is for [$SHOPFN_USER_ADDR]")
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", ".data", "shopfn dev's data directory, for the service token of internal calls")

	show := func(cmd *cobra.Command, p *paymentv1.Payment) error {
		if p == nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "no payment: the order was never authorized (or was declined); nothing to give back")
			return nil
		}
		return printProto(cmd.OutOrStdout(), p)
	}
	internal := func(cmd *cobra.Command, fn func(paymentv1.PaymentServiceClient) error) error {
		creds, err := serviceCredentials(dataDir, order.Name)
		if err != nil {
			return err
		}
		return withPayment(addr, creds, fn)
	}

	get := &cobra.Command{
		Use:   "get ORDER_ID",
		Short: "Show an order's payment (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withPayment(addr, nil, func(c paymentv1.PaymentServiceClient) error {
				resp, err := c.GetPayment(ctx, &paymentv1.GetPaymentRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return show(cmd, resp.GetPayment())
			})
		},
	}

	var (
		token    string
		currency string
		minor    int64
	)
	authorize := &cobra.Command{
		Use:   "authorize ORDER_ID",
		Short: "Hold an amount on a test token for an order (internal; local dev only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return internal(cmd, func(c paymentv1.PaymentServiceClient) error {
				resp, err := c.Authorize(cmd.Context(), &paymentv1.AuthorizeRequest{
					OrderId: args[0], PaymentToken: token,
					Amount: &commonv1.Money{CurrencyCode: currency, AmountMinor: minor},
				})
				if err != nil {
					return err
				}
				return show(cmd, resp.GetPayment())
			})
		},
	}
	authorize.Flags().StringVar(&token, "token", "tok_visa", "payment token (see functions/payment/README.md)")
	authorize.Flags().Int64Var(&minor, "amount-minor", 0, "amount in minor units, e.g. 1234 for 12.34 (required)")
	authorize.Flags().StringVar(&currency, "currency", "EUR", "ISO 4217 currency code")
	authorize.MarkFlagRequired("amount-minor")

	capture := &cobra.Command{
		Use:   "capture ORDER_ID",
		Short: "Take an order's authorized money, all or --amount-minor of it (internal; local dev only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &paymentv1.CaptureRequest{OrderId: args[0]}
			if cmd.Flags().Changed("amount-minor") {
				req.Amount = &commonv1.Money{CurrencyCode: currency, AmountMinor: minor}
			}
			return internal(cmd, func(c paymentv1.PaymentServiceClient) error {
				resp, err := c.Capture(cmd.Context(), req)
				if err != nil {
					return err
				}
				return show(cmd, resp.GetPayment())
			})
		},
	}
	capture.Flags().Int64Var(&minor, "amount-minor", 0, "amount in minor units (default: the whole authorization)")
	capture.Flags().StringVar(&currency, "currency", "EUR", "ISO 4217 currency code of --amount-minor")

	refund := &cobra.Command{
		Use:   "refund ORDER_ID",
		Short: "Void an order's authorization or refund its capture (internal; local dev only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return internal(cmd, func(c paymentv1.PaymentServiceClient) error {
				resp, err := c.Refund(cmd.Context(), &paymentv1.RefundRequest{OrderId: args[0]})
				if err != nil {
					return err
				}
				return show(cmd, resp.GetPayment())
			})
		},
	}

	cmd.AddCommand(get, authorize, capture, refund)
	return cmd
}
