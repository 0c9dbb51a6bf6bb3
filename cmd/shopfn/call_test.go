package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCallRunsAScheduledMethod(t *testing.T) {
	dataDir := t.TempDir()
	eps := startDevIn(t, dataDir)
	out, err := shopfn(t, "", "call", "--addr", eps["order"], "--data-dir", dataDir, "/shopfn.order.v1.OrderService/Resume")
	if err != nil {
		t.Fatalf("call Resume = %v", err)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Errorf("call printed %q, not JSON: %v", out, err)
	}
	out, err = shopfn(t, "", "call", "--addr", eps["order"], "--data-dir", dataDir, "/shopfn.ops.v1.OutboxService/Sweep")
	if err != nil {
		t.Fatalf("call Sweep = %v (%s)", err, out)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no such service", []string{"--addr", eps["order"], "--data-dir", dataDir, "/shopfn.nope.v1.Nope/Do"}, "no service"},
		{"no such method", []string{"--addr", eps["order"], "--data-dir", dataDir, "/shopfn.order.v1.OrderService/Nope"}, "has no method"},
		{"a stream", []string{"--addr", eps["order"], "--data-dir", dataDir, "/shopfn.order.v1.OrderService/WatchOrder"}, "streams"},
		{"no signing key", []string{"--addr", eps["order"], "--data-dir", t.TempDir(), "/shopfn.order.v1.OrderService/Resume"}, "signing key"},
		{"no address", []string{"/shopfn.order.v1.OrderService/Resume"}, "--addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := shopfn(t, "", append([]string{"call"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("call %v = %v, want an error mentioning %q", tt.args, err, tt.want)
			}
		})
	}
}
