package dial

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in            string
		wantAddr      string
		wantTLS       bool
		wantAuthority string
	}{
		{"https://orders-abc-uc.a.run.app", "orders-abc-uc.a.run.app:443", true, "orders-abc-uc.a.run.app"},
		{"https://orders.example.com:8443/", "orders.example.com:8443", true, "orders.example.com:8443"},
		{"https://[::1]", "[::1]:443", true, "[::1]"},
		{"http://order.default.svc.cluster.local", "order.default.svc.cluster.local:80", false, "order.default.svc.cluster.local"},
		{"http://localhost:50051", "localhost:50051", false, "localhost:50051"},
		{"localhost:50051", "localhost:50051", false, "localhost:50051"},
		{"[::1]:50051", "[::1]:50051", false, "[::1]:50051"},
	}
	for _, tt := range tests {
		addr, useTLS, authority, err := parseTarget(tt.in)
		if err != nil || addr != tt.wantAddr || useTLS != tt.wantTLS || authority != tt.wantAuthority {
			t.Errorf("parseTarget(%q) = %q, %v, %q, %v, want %q, %v, %q, nil",
				tt.in, addr, useTLS, authority, err, tt.wantAddr, tt.wantTLS, tt.wantAuthority)
		}
	}
}

func TestServiceConfig(t *testing.T) {
	got, err := serviceConfig(
		[]string{"/shopfn.inventory.v1.InventoryService/Reserve", "/shopfn.inventory.v1.InventoryService/Reserve", "/shopfn.payment.v1.PaymentService/Capture"},
		RetryPolicy{MaxBackoff: 250 * time.Millisecond, RetryableCodes: []codes.Code{codes.Unavailable, codes.Aborted}},
		RetryThrottling{},
	)
	if err != nil {
		t.Fatalf("serviceConfig() = %v", err)
	}
	want := `{
		"methodConfig": [{
			"name": [
				{"service": "shopfn.inventory.v1.InventoryService", "method": "Reserve"},
				{"service": "shopfn.payment.v1.PaymentService", "method": "Capture"}
			],
			"retryPolicy": {
				"maxAttempts": 4,
				"initialBackoff": "0.05s",
				"maxBackoff": "0.25s",
				"backoffMultiplier": 2,
				"retryableStatusCodes": [14, 10]
			}
		}],
		"retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}
	}`
	if !jsonEqual(t, got, want) {
		t.Errorf("serviceConfig() = %s, want %s", got, want)
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
