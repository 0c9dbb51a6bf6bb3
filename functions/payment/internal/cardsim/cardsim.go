// Package cardsim is a simulated card processor: it answers charge's
// Processor calls by the payment token alone, so every outcome a real
// processor can produce (approval, decline, outage, slowness) can be
// produced on purpose. The tokens are documented in
// functions/payment/README.md; keep the two in step.
//
// The simulator keeps one piece of state, the number of authorization
// attempts per order, in durable storage it is given, so a token that fails
// the first N attempts of an order counts across calls and restarts.
package cardsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopfn/shopfn/functions/payment/internal/charge"
)

// Attempts counts authorization attempts per order, durably.
type Attempts interface {
	// NextAttempt records one more attempt for the order and returns how
	// many there have been, this one included.
	NextAttempt(ctx context.Context, orderID string) (int, error)
}

// Token limits. A token outside them is unknown, like a misspelt one.
const (
	// MaxFailures bounds N in tok_unavailable_N: more failures than any
	// caller's retry policy would sit through.
	MaxFailures = 100
	// MaxDelay bounds D in tok_slow_Dms: longer than any sensible deadline
	// for one authorization.
	MaxDelay = 30 * time.Second
)

// card is what the processor reports about the card behind a token.
type card struct{ brand, last4 string }

var (
	visa       = card{"visa", "4242"}
	mastercard = card{"mastercard", "4444"}
	amex       = card{"amex", "0005"}
)

// behaviour is what a token does.
type behaviour struct {
	card        card
	declineCode string        // non-empty: decline with this code
	failFirst   int           // fail the order's first failFirst attempts
	delay       time.Duration // answer after this long
}

// fixed are the tokens without parameters.
var fixed = map[string]behaviour{
	"tok_visa":               {card: visa},
	"tok_mastercard":         {card: mastercard},
	"tok_amex":               {card: amex},
	"tok_decline":            {card: card{"visa", "0002"}, declineCode: "card_declined"},
	"tok_insufficient_funds": {card: card{"visa", "9995"}, declineCode: "insufficient_funds"},
	"tok_expired_card":       {card: card{"visa", "0069"}, declineCode: "expired_card"},
}

// Processor is the simulated processor.
type Processor struct {
	attempts Attempts
}

var _ charge.Processor = (*Processor)(nil)

// New returns a simulated processor counting attempts in a.
func New(a Attempts) *Processor { return &Processor{attempts: a} }

// Authorize implements charge.Processor: it decides by the token (see the
// package documentation). Every authorization with a known token counts as
// an attempt for the order, whatever its outcome.
func (p *Processor) Authorize(ctx context.Context, orderID string, _ charge.Money, token string) (charge.Authorization, error) {
	b, ok := parse(token)
	if !ok {
		return charge.Authorization{}, charge.ErrInvalidToken
	}
	n, err := p.attempts.NextAttempt(ctx, orderID)
	if err != nil {
		return charge.Authorization{}, fmt.Errorf("count attempt: %w", err)
	}
	if n <= b.failFirst {
		return charge.Authorization{}, charge.ErrProcessorUnavailable.With("attempt", strconv.Itoa(n))
	}
	if b.delay > 0 {
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			// The caller gave up first: no decision was made, nothing held.
			return charge.Authorization{}, ctx.Err()
		}
	}
	return charge.Authorization{
		Approved:    b.declineCode == "",
		DeclineCode: b.declineCode,
		CardBrand:   b.card.brand,
		CardLast4:   b.card.last4,
	}, nil
}

// Capture implements charge.Processor; the simulator settles at once.
func (p *Processor) Capture(ctx context.Context, _ string, _ charge.Money) error { return ctx.Err() }

// Void implements charge.Processor; the simulator settles at once.
func (p *Processor) Void(ctx context.Context, _ string) error { return ctx.Err() }

// Refund implements charge.Processor; the simulator settles at once.
func (p *Processor) Refund(ctx context.Context, _ string, _ charge.Money) error { return ctx.Err() }

// parse returns what token does, or false for an unknown token. Numbers
// must be written plainly (no sign, no leading zeros): a token has one
// spelling.
func parse(token string) (behaviour, bool) {
	if b, ok := fixed[token]; ok {
		return b, true
	}
	if s, ok := strings.CutPrefix(token, "tok_unavailable_"); ok {
		n, ok := plainInt(s)
		if !ok || n < 1 || n > MaxFailures {
			return behaviour{}, false
		}
		return behaviour{card: visa, failFirst: n}, true
	}
	if s, ok := strings.CutPrefix(token, "tok_slow_"); ok {
		s, ok = strings.CutSuffix(s, "ms")
		n, okInt := plainInt(s)
		if !ok || !okInt || n < 1 || time.Duration(n)*time.Millisecond > MaxDelay {
			return behaviour{}, false
		}
		return behaviour{card: visa, delay: time.Duration(n) * time.Millisecond}, true
	}
	return behaviour{}, false
}

// plainInt parses a decimal number written without sign or leading zeros.
func plainInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}
