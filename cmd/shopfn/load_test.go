package main

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
)

func TestLoadCommand(t *testing.T) {
	// The test measures the load tool, not the per-caller limit: under
	// -race a few workers can outrun 50 calls per second per customer.
	t.Setenv("SHOPFN_RATE_LIMIT_RPS", "0")
	t.Setenv("SHOPFN_PASSWORD", "")
	eps := startDev(t)
	addrs := []string{"--user-addr", eps["user"], "--catalog-addr", eps["catalog"],
		"--inventory-addr", eps["inventory"], "--order-addr", eps["order"]}

	for _, target := range []string{"products", "orders"} {
		t.Run(target, func(t *testing.T) {
			args := append([]string{"load", target, "--duration", "1s", "--concurrency", "4", "--json",
				// A loaded CI machine can take seconds for one call; the test counts, it does not time.
				"--timeout", "60s"}, addrs...)
			out, err := shopfn(t, "", args...)
			if err != nil {
				t.Fatalf("load %s = %v; output:\n%s", target, explain(err), out)
			}
			var rep loadReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("load %s printed %q: %v", target, out, err)
			}
			if rep.Target != target || rep.Concurrency != 4 {
				t.Errorf("load %s: target %q concurrency %d, want %q 4", target, rep.Target, rep.Concurrency, target)
			}
			if rep.OK <= 0 || rep.Errors != 0 || len(rep.ErrorGroups) != 0 {
				t.Errorf("load %s: ok %d errors %d %v, want ok > 0 and no errors", target, rep.OK, rep.Errors, rep.ErrorGroups)
			}
			if rep.OK+rep.Errors != rep.Requests {
				t.Errorf("load %s: ok %d + errors %d != requests %d", target, rep.OK, rep.Errors, rep.Requests)
			}
			if rep.RPS <= 0 || rep.LatencyMS.P50 <= 0 || rep.LatencyMS.P50 > rep.LatencyMS.P99 || rep.LatencyMS.P99 > rep.LatencyMS.Max {
				t.Errorf("load %s: rps %v latency %+v, want positive and ordered", target, rep.RPS, rep.LatencyMS)
			}
		})
	}
}

func TestLoadRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no workers", []string{"load", "orders", "--concurrency", "0"}, "--concurrency 0"},
		{"no duration", []string{"load", "products", "--duration", "0s"}, "--duration"},
		{"no connections", []string{"load", "orders", "--conns", "0"}, "--conns"},
		{"unknown target", []string{"load", "users"}, "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens on port 1: a flag check that came after a
			// call would fail differently.
			args := append(tt.args, "--user-addr", "127.0.0.1:1", "--catalog-addr", "127.0.0.1:1",
				"--inventory-addr", "127.0.0.1:1", "--order-addr", "127.0.0.1:1")
			_, err := shopfn(t, "", args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("shopfn %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestLoadErrorGroup(t *testing.T) {
	tests := []struct {
		name       string
		in         error
		code, want string
	}{
		{"cancelled order", orderOutcomeError{state: orderv1.OrderState_ORDER_STATE_CANCELLED, reason: errorsv1.ErrorReason_INSUFFICIENT_STOCK},
			"OrderCancelled", "INSUFFICIENT_STOCK"},
		{"pending order", orderOutcomeError{state: orderv1.OrderState_ORDER_STATE_PENDING}, "OrderPending", ""},
		{"status without details", status.Error(codes.Unavailable, "down"), "Unavailable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, reason := errorGroup(tt.in); code != tt.code || reason != tt.want {
				t.Errorf("errorGroup(%v) = %q, %q; want %q, %q", tt.in, code, reason, tt.code, tt.want)
			}
		})
	}
}
