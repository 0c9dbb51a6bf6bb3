package dial

import (
	"cmp"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
)

const (
	// defaultConsecutiveFailures opens the breaker after five failed calls in
	// a row. Each idempotent call has already been retried by the channel, so
	// five failed calls are up to twenty failed attempts: not bad luck.
	defaultConsecutiveFailures = 5

	// defaultFailureRatio and defaultMinRequests open the breaker when at
	// least half of the last Window's calls failed, once there are enough
	// calls (20) for a ratio to mean something. This catches a dependency
	// that fails often but not five times in a row.
	defaultFailureRatio = 0.5
	defaultMinRequests  = 20

	// defaultWindow is the rolling window of the ratio rule, counted in ten
	// buckets so old calls age out smoothly instead of all at once.
	defaultWindow = 30 * time.Second
	windowBuckets = 10

	// defaultOpenTimeout is how long the breaker stays open before letting one
	// probe call through: long enough for Cloud Run to start a replacement
	// instance, short enough that a recovered dependency is used again soon.
	defaultOpenTimeout = 10 * time.Second
)

// BreakerSettings configures the circuit breaker of a connection. Zero fields
// take their defaults.
//
// There is one breaker per connection, that is per target service: the
// failures it reacts to (no instance, a crashing or overloaded service) hit
// all methods of a deployable alike, and one breaker notices them sooner than
// one per method would. The price is that a single method failing on its own
// can open the breaker for its siblings.
//
// The breaker sees a call once, after the channel's retries. A call counts as
// a failure when it ends with Unavailable, DeadlineExceeded, Internal, Unknown
// or DataLoss: the target is down, too slow or broken. Every other code,
// including InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
// Aborted, PermissionDenied, Unauthenticated, ResourceExhausted and
// Unimplemented, is an answer from a working server and counts as a success.
// Canceled (the caller gave up) counts as neither, and a call whose context
// is already done when it starts does not reach the breaker.
//
// While open, calls fail at once with codes.Unavailable and a
// google.rpc.ErrorInfo with reason CIRCUIT_OPEN, domain "shopfn" and the
// target in its metadata. After OpenTimeout one call is let through: success
// closes the breaker, failure opens it again.
type BreakerSettings struct {
	// Disabled turns the breaker off.
	Disabled bool

	// ConsecutiveFailures opens the breaker after that many failed calls in
	// a row; default 5.
	ConsecutiveFailures uint32

	// FailureRatio opens the breaker when at least this fraction of the
	// calls in Window failed, once there were MinRequests of them; default
	// 0.5 of at least 20 calls. A ratio above 1 turns the rule off.
	FailureRatio float64
	MinRequests  uint32

	// Window is the rolling window of the ratio rule; default 30s.
	Window time.Duration

	// OpenTimeout is how long the breaker stays open; default 10s.
	OpenTimeout time.Duration
}

// breaker applies one gobreaker circuit breaker to every call on a
// connection.
type breaker struct {
	target string
	cb     *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func newBreaker(target string, s BreakerSettings) *breaker {
	if s.Disabled {
		return &breaker{target: target}
	}
	consecutive := cmp.Or(s.ConsecutiveFailures, defaultConsecutiveFailures)
	ratio := cmp.Or(s.FailureRatio, defaultFailureRatio)
	minRequests := cmp.Or(s.MinRequests, defaultMinRequests)
	window := cmp.Or(s.Window, defaultWindow)
	return &breaker{
		target: target,
		cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:         target,
			Interval:     window,
			BucketPeriod: window / windowBuckets,
			Timeout:      cmp.Or(s.OpenTimeout, defaultOpenTimeout),
			ReadyToTrip: func(c gobreaker.Counts) bool {
				n := c.TotalSuccesses + c.TotalFailures
				return c.ConsecutiveFailures >= consecutive ||
					(n >= minRequests && float64(c.TotalFailures) >= ratio*float64(n))
			},
			IsSuccessful: func(err error) bool { return !isFailure(err) },
			IsExcluded:   func(err error) bool { return status.Code(err) == codes.Canceled },
		}),
	}
}

// isFailure reports whether a call's error says the target is down, too slow
// or broken, rather than answering.
func isFailure(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}

// allow asks the breaker to let a call through. It returns the function that
// reports the call's outcome, or the error to fail the call with.
func (b *breaker) allow(ctx context.Context) (done func(error), err error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	if b.cb == nil {
		return func(error) {}, nil
	}
	done, err = b.cb.Allow()
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, b.openError()
	}
	return done, err
}

// openError is the error of a call rejected by the open breaker.
func (b *breaker) openError() error {
	st := status.New(codes.Unavailable, "circuit breaker open for "+b.target)
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   errorsv1.ErrorReason_CIRCUIT_OPEN.String(),
		Domain:   "shopfn",
		Metadata: map[string]string{"target": b.target},
	})
	if err != nil {
		return st.Err()
	}
	return withInfo.Err()
}

// unary is the breaker's unary client interceptor.
func (b *breaker) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	done, err := b.allow(ctx)
	if err != nil {
		return err
	}
	err = invoker(ctx, method, req, reply, cc, opts...)
	done(err)
	return err
}

// stream is the breaker's stream client interceptor. A stream's outcome is
// its first sign of life: an error from opening it, the first message
// received (success), the end of the stream (its status; a clean end is a
// success), an error from sending or from Header, or else the caller's
// context ending first. Whatever happens after that is not counted, so a
// WatchOrder that breaks after an hour does not open the breaker.
func (b *breaker) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	done, err := b.allow(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		done(err)
		return nil, err
	}
	s := &breakerStream{ClientStream: cs, done: done}
	// The callback may run before s.stop is set, so it must not call finish.
	s.stop = context.AfterFunc(ctx, func() { s.report(status.FromContextError(ctx.Err()).Err()) })
	return s, nil
}

// breakerStream reports the first outcome of a stream to the breaker.
type breakerStream struct {
	grpc.ClientStream
	done func(error)
	stop func() bool
	once sync.Once
}

// report passes the stream's outcome to the breaker, once.
func (s *breakerStream) report(err error) {
	s.once.Do(func() { s.done(err) })
}

// finish reports the outcome seen by a stream method and stops watching the
// context. Only the caller's goroutines call it, after stream has returned.
func (s *breakerStream) finish(err error) {
	s.stop()
	s.report(err)
}

// RecvMsg reports the first message or the stream's final status.
func (s *breakerStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if errors.Is(err, io.EOF) {
		s.finish(nil)
	} else {
		s.finish(err)
	}
	return err
}

// SendMsg reports a failure to send; io.EOF only says the stream ended, and
// its status comes from RecvMsg.
func (s *breakerStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && !errors.Is(err, io.EOF) {
		s.finish(err)
	}
	return err
}

// Header reports a failure to receive the header.
func (s *breakerStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		s.finish(err)
	}
	return md, err
}
