package infra

import (
	"slices"
	"strings"
	"testing"
)

func TestEmbeddedStackParses(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	for _, typ := range []string{"order.confirmed", "order.cancelled", "catalog.image.uploaded", "inventory.low_stock"} {
		if _, ok := s.TopicFor(typ); !ok {
			t.Errorf("TopicFor(%q) found nothing", typ)
		}
	}
	if got := len(s.PushTo("invoicing")); got != 1 {
		t.Errorf("PushTo(invoicing) = %d subscriptions, want 1", got)
	}
}

// TestParseUsesInternal: uses may name an internal deployable, which the
// user then reaches with its callers' own tokens; that gives it no signing
// key, and it needs no place among the callee's callers.
func TestParseUsesInternal(t *testing.T) {
	base := string(stackYAML)
	old, new := "uses: [order, user]", "uses: [order, user, payment]"
	if !strings.Contains(base, old) {
		t.Fatalf("stack.yaml no longer contains %q: update the test", old)
	}
	s, err := Parse([]byte(strings.Replace(base, old, new, 1)))
	if err != nil {
		t.Fatalf("Parse(support uses internal payment) = %v, want no error", err)
	}
	support, _ := s.Deployable("support")
	payment, _ := s.Deployable("payment")
	if payment.Ingress != IngressInternal || slices.Contains(payment.Callers, "support") {
		t.Fatalf("payment: ingress %s, callers %v: the test needs an internal payment that support does not call", payment.Ingress, payment.Callers)
	}
	if !slices.Contains(support.Dials(), "payment") || support.NeedsSigningKey() {
		t.Errorf("support using payment: Dials() = %v, NeedsSigningKey() = %v, want payment dialled and no signing key", support.Dials(), support.NeedsSigningKey())
	}

	// The embedded stack: the gateway uses internal services and signs nothing.
	gw, ok := mustStack(t).Deployable("gateway")
	if !ok {
		t.Fatalf("stack.yaml has no gateway")
	}
	internal := slices.ContainsFunc(gw.Uses, func(n string) bool { d, _ := mustStack(t).Deployable(n); return d.Ingress == IngressInternal })
	if gw.Kind != KindHTTP || !internal || gw.NeedsSigningKey() {
		t.Errorf("gateway: kind %s, uses an internal deployable %v, NeedsSigningKey() %v: want http, true, false", gw.Kind, internal, gw.NeedsSigningKey())
	}
}

func TestParseRejects(t *testing.T) {
	base := string(stackYAML)
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown key", "region: europe-west1", "region: europe-west1\nregoin: x", "regoin"},
		{"min instances", "minInstances: 0", "minInstances: 1", "scale to zero"},
		{"bad duration", "timeout: 30s", "timeout: thirty", "invalid duration"},
		{"unknown topic", "publishes: [order-confirmed, order-cancelled]", "publishes: [order-confirmd, order-cancelled]", "unknown topic"},
		{"push to a service", "push: invoicing", "push: order", "not a function"},
		{"dead letter missing", "deadLetterTopic: invoicing-dead-letter", "deadLetterTopic: nowhere", "deadLetterTopic"},
		{"attempts", "maxDeliveryAttempts: 5\n    deadLetterTopic: invoicing", "maxDeliveryAttempts: 500\n    deadLetterTopic: invoicing", "maxDeliveryAttempts"},
		{"duplicate port", "devPort: 9002", "devPort: 9001", "devPort"},
		{"unknown caller", "callers: [order]", "callers: [ordr]", "unknown caller"},
		{"schedule target", "target: order\n    method: /shopfn.order.v1.OrderService/Resume", "target: payment\n    method: /shopfn.order.v1.OrderService/Resume", "callers"},
		{"internal callee not granted", "callers: [order]\n", "callers: [scheduler]\n", "does not list it among its callers"},
		{"caller that does not call", "callers: [invoicing, scheduler]", "callers: [invoicing, imaging, scheduler]", "does not list it in calls"},
		{"uses unknown", "uses: [order, user]", "uses: [order, usr]", "unknown deployable"},
		{"uses itself", "uses: [order, user]", "uses: [order, user, support]", "repeats itself or calls"},
		{"uses what it calls", "calls: [catalog]", "calls: [catalog]\n    uses: [catalog]", "repeats itself or calls"},
		{"unknown kind", "kind: http", "kind: rest", "not grpc, function or http"},
		{"name not a service account id", "name: support", "name: Support", "lowercase"},
		{"timeout in hours", "timeout: 3600s # chat sessions", "timeout: 1h", "whole seconds or minutes"},
		{"ack deadline in ms", "ackDeadline: 120s", "ackDeadline: 120000ms", "whole seconds or minutes"},
		{"schedule not a cron line", "every: 1m\n  - name: order-outbox-sweep", "every: 7m\n  - name: order-outbox-sweep", "cron"},
		{"bucket without env", "env: SHOPFN_INVOICES_BUCKET", "env: INVOICES", "SHOPFN_"},
		{"schedules without the cli", "  command: ./cmd/shopfn\n", "  command: \"\"\n", "cli"},
		{"index field", "fields: [words contains, name]", "fields: [words CONTAINS, name]", "PATH desc or PATH contains"},
		{"index of one field", "fields: [active, name]", "fields: [active]", "at least two fields"},
		{"index without a database", "    database: catalog\n", "\n", "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("stack.yaml no longer contains %q: update the test", tt.old)
			}
			_, err := Parse([]byte(strings.Replace(base, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%s) = %v, want an error mentioning %q", tt.name, err, tt.want)
			}
		})
	}
}
