package cardsim

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/payment/internal/charge"
)

// counter is an in-memory Attempts for testing the simulator alone.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) NextAttempt(_ context.Context, orderID string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[orderID]++
	return c.n[orderID], nil
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want behaviour
		ok   bool
	}{
		{"tok_visa", behaviour{card: visa}, true},
		{"tok_mastercard", behaviour{card: mastercard}, true},
		{"tok_decline", behaviour{card: card{"visa", "0002"}, declineCode: "card_declined"}, true},
		{"tok_unavailable_1", behaviour{card: visa, failFirst: 1}, true},
		{"tok_unavailable_100", behaviour{card: visa, failFirst: 100}, true},
		{"tok_slow_300ms", behaviour{card: visa, delay: 300 * time.Millisecond}, true},
		{"tok_slow_30000ms", behaviour{card: visa, delay: 30 * time.Second}, true},
		{"", behaviour{}, false},
		{"TOK_VISA", behaviour{}, false},
		{"tok_visa ", behaviour{}, false},
		{"tok_unavailable_", behaviour{}, false},
		{"tok_unavailable_0", behaviour{}, false},
		{"tok_unavailable_-1", behaviour{}, false},
		{"tok_unavailable_+1", behaviour{}, false},
		{"tok_unavailable_01", behaviour{}, false},
		{"tok_unavailable_101", behaviour{}, false},
		{"tok_unavailable_99999999999999999999", behaviour{}, false},
		{"tok_slow_ms", behaviour{}, false},
		{"tok_slow_0ms", behaviour{}, false},
		{"tok_slow_300", behaviour{}, false},
		{"tok_slow_300s", behaviour{}, false},
		{"tok_slow_30001ms", behaviour{}, false},
	}
	for _, tt := range tests {
		got, ok := parse(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parse(%q) = %+v, %v, want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAuthorize(t *testing.T) {
	p := New(&counter{})
	ctx := context.Background()
	eur := charge.Money{Currency: "EUR", Minor: 100}
	if a, err := p.Authorize(ctx, "o1", eur, "tok_insufficient_funds"); err != nil || a.Approved || a.DeclineCode != "insufficient_funds" {
		t.Errorf("Authorize(tok_insufficient_funds) = %+v, %v, want a decline", a, err)
	}
	if _, err := p.Authorize(ctx, "o1", eur, "tok_nope"); !errors.Is(err, charge.ErrInvalidToken) {
		t.Errorf("Authorize(tok_nope) = %v, want ErrInvalidToken", err)
	}
	for i := range 3 {
		a, err := p.Authorize(ctx, "o2", eur, "tok_unavailable_2")
		if wantFail := i < 2; wantFail != errors.Is(err, charge.ErrProcessorUnavailable) || (!wantFail && !a.Approved) {
			t.Errorf("Authorize(tok_unavailable_2) attempt %d = %+v, %v", i+1, a, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := p.Authorize(short, "o3", eur, "tok_slow_30000ms"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authorize(tok_slow_30000ms) with a short deadline = %v, want DeadlineExceeded", err)
	}
}

// TestReadmeListsEveryToken keeps the README's table in step with the
// simulator.
func TestReadmeListsEveryToken(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for token, b := range fixed {
		row := "| `" + token + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README has no row for %s", token)
		}
		if !strings.Contains(readme, b.card.last4) || (b.declineCode != "" && !strings.Contains(readme, "`"+b.declineCode+"`")) {
			t.Errorf("README does not give %s's card or decline code", token)
		}
	}
	for _, row := range []string{"| `tok_unavailable_N` |", "| `tok_slow_Dms` |"} {
		if !strings.Contains(readme, row) {
			t.Errorf("README has no row %s", row)
		}
	}
}
