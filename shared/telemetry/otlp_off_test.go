//go:build !otlp

package telemetry_test

import (
	"context"
	"testing"

	"github.com/shopfn/shopfn/shared/telemetry"
)

func TestSetupWithoutOTLPRefusesAnEndpoint(t *testing.T) {
	_, err := telemetry.Setup(context.Background(), "test", telemetry.Config{Endpoint: "http://127.0.0.1:4317"})
	if err == nil {
		t.Fatal("Setup(endpoint set) in a binary without OTLP = nil error, want one: traces would be lost silently")
	}
}
