package dial

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

const (
	// defaultMaxAttempts is one try and three retries. With the default
	// backoff the retries wait 0–50ms, 0–100ms and 0–200ms (gRPC jitters each
	// wait between zero and the current backoff): enough to ride out an
	// instance being replaced or a connection being reset, quick enough to
	// leave most of the deadline to the last attempt.
	defaultMaxAttempts = 4

	// grpcMaxAttempts is grpc-go's cap on MaxAttempts unless raised with
	// grpc.WithMaxCallAttempts.
	grpcMaxAttempts = 5

	// defaultInitialBackoff and defaultMaxBackoff bound the wait before a
	// retry: long enough for a new connection to be made, short next to the
	// 5s default deadline.
	defaultInitialBackoff = 50 * time.Millisecond
	defaultMaxBackoff     = time.Second

	// defaultBackoffMultiplier doubles the backoff after each attempt.
	defaultBackoffMultiplier = 2

	// defaultMaxTokens and defaultTokenRatio are gRPC's own example values:
	// each failed attempt costs one token, each success earns 0.1 back, and
	// retries stop while at most half of the 10 tokens are left. So an outage
	// stops retrying after about five failures instead of multiplying the
	// load on the failing service by MaxAttempts.
	defaultMaxTokens  = 10
	defaultTokenRatio = 0.1
)

// RetryPolicy is the retry policy of the idempotent methods, carried out by
// the gRPC channel itself (gRFC A6). Zero fields take their defaults.
//
// gRPC has no per-attempt deadline: every attempt shares the call's deadline,
// and a retry never outlives it.
type RetryPolicy struct {
	// MaxAttempts counts the first try, so it is at least 2; default 4.
	// Values above 5 also raise grpc-go's own cap.
	MaxAttempts int

	// InitialBackoff (default 50ms), MaxBackoff (default 1s) and
	// BackoffMultiplier (default 2) shape the randomized wait between
	// attempts.
	InitialBackoff    time.Duration
	MaxBackoff        time.Duration
	BackoffMultiplier float64

	// RetryableCodes are the status codes that are retried; default only
	// codes.Unavailable, which is what a connection failure, a draining or
	// overloaded Cloud Run instance (HTTP 503 and 429) and a server shutting
	// down produce. DeadlineExceeded is not retried by default: the deadline
	// is shared by all attempts, so when the caller's ran out there is no
	// time left, and when a server's own downstream deadline ran out a retry
	// would most likely run out too. ResourceExhausted is not retried by
	// default: it means rate limited or message too large, where retrying
	// within milliseconds makes things worse or cannot help.
	RetryableCodes []codes.Code
}

func (p RetryPolicy) maxAttempts() int {
	if p.MaxAttempts == 0 {
		return defaultMaxAttempts
	}
	return p.MaxAttempts
}

// RetryThrottling limits the retries of a whole connection (gRFC A6
// retryThrottling). Zero fields take their defaults.
type RetryThrottling struct {
	// MaxTokens is the size of the token bucket, in (0, 1000]; default 10.
	MaxTokens float64

	// TokenRatio is the number of tokens a successful call earns back;
	// default 0.1.
	TokenRatio float64
}

// The JSON shape of the gRPC service config, as far as we use it:
// https://github.com/grpc/grpc-proto/blob/master/grpc/service_config/service_config.proto
type (
	jsonServiceConfig struct {
		MethodConfig    []jsonMethodConfig `json:"methodConfig,omitempty"`
		RetryThrottling jsonThrottling     `json:"retryThrottling"`
	}
	jsonMethodConfig struct {
		Name        []jsonName      `json:"name"`
		RetryPolicy jsonRetryPolicy `json:"retryPolicy"`
	}
	jsonName struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	jsonRetryPolicy struct {
		MaxAttempts       int     `json:"maxAttempts"`
		InitialBackoff    string  `json:"initialBackoff"`
		MaxBackoff        string  `json:"maxBackoff"`
		BackoffMultiplier float64 `json:"backoffMultiplier"`
		// Codes are written as numbers, which gRPC accepts like names.
		RetryableStatusCodes []codes.Code `json:"retryableStatusCodes"`
	}
	jsonThrottling struct {
		MaxTokens  float64 `json:"maxTokens"`
		TokenRatio float64 `json:"tokenRatio"`
	}
)

// serviceConfig returns the service config JSON that retries the idempotent
// methods with policy p and throttles retries with t.
func serviceConfig(idempotent []string, p RetryPolicy, t RetryThrottling) (string, error) {
	sc := jsonServiceConfig{RetryThrottling: jsonThrottling{
		MaxTokens:  cmp.Or(t.MaxTokens, defaultMaxTokens),
		TokenRatio: cmp.Or(t.TokenRatio, defaultTokenRatio),
	}}
	// gRPC checks these only when there is a methodConfig; check them always.
	if mt, tr := sc.RetryThrottling.MaxTokens, sc.RetryThrottling.TokenRatio; mt <= 0 || mt > 1000 || tr <= 0 {
		return "", fmt.Errorf("retry throttling %v/%v: want maxTokens in (0, 1000] and tokenRatio > 0", mt, tr)
	}
	codesToRetry := p.RetryableCodes
	if len(codesToRetry) == 0 {
		codesToRetry = []codes.Code{codes.Unavailable}
	}
	var names []jsonName
	for _, m := range idempotent {
		svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if !strings.HasPrefix(m, "/") || !ok || svc == "" || method == "" || strings.Contains(method, "/") {
			return "", fmt.Errorf("idempotent method %q: want /package.Service/Method", m)
		}
		n := jsonName{Service: svc, Method: method}
		if !slices.Contains(names, n) { // gRPC rejects duplicate names
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		sc.MethodConfig = []jsonMethodConfig{{
			Name: names,
			RetryPolicy: jsonRetryPolicy{
				MaxAttempts:          p.maxAttempts(),
				InitialBackoff:       seconds(cmp.Or(p.InitialBackoff, defaultInitialBackoff)),
				MaxBackoff:           seconds(cmp.Or(p.MaxBackoff, defaultMaxBackoff)),
				BackoffMultiplier:    cmp.Or(p.BackoffMultiplier, defaultBackoffMultiplier),
				RetryableStatusCodes: codesToRetry,
			},
		}}
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("encode service config: %w", err)
	}
	return string(b), nil
}

// seconds formats d the way the service config writes durations ("0.05s").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
