package auth

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// limiterMaxKeys bounds the limiter's memory: a flood of distinct keys
// (spoofed addresses, many accounts) cannot grow it without limit. When
// full, idle keys are dropped; a key idle long enough to be dropped has
// refilled its bucket anyway, so dropping it changes no decision.
const limiterMaxKeys = 100_000

// Limiter is a token bucket per key (golang.org/x/time/rate).
type Limiter struct {
	limit rate.Limit
	burst int
	// idle is how long a full bucket takes to refill: an entry idle that
	// long is indistinguishable from a new one.
	idle time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// NewLimiter allows perSecond events per key on average, with bursts of
// burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		idle:    time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second,
		buckets: make(map[string]*bucket),
	}
}

// Allow takes one event from key's bucket. When the bucket is empty it
// returns false and how long until an event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= limiterMaxKeys {
			l.evictIdle(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	l.mu.Unlock()

	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evictIdle drops buckets idle for longer than a full refill, or all of
// them if that frees nothing. l.mu is held.
func (l *Limiter) evictIdle(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.last) > l.idle {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= limiterMaxKeys {
		clear(l.buckets)
	}
}

// ClientAddr returns the client's IP address: from X-Forwarded-For when
// hops trusted proxies append to it (the entry hops from the right), else
// the connection's peer.
func ClientAddr(ctx context.Context, hops int) string {
	if hops > 0 {
		var addrs []string
		for _, v := range metadata.ValueFromIncomingContext(ctx, "x-forwarded-for") {
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) >= hops {
			return addrs[len(addrs)-hops]
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return "unknown"
}
