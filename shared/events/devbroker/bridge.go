package devbroker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/credentials"

	"github.com/shopfn/shopfn/infra"
)

// Bridge pulls the push subscriptions of the stack and posts each message
// to its function, like Pub/Sub push. It uses unary Pull with
// ReturnImmediately, because pstest's streaming pull manages only ~1,000
// messages a second and an empty unary Pull otherwise waits 500 ms.
type Bridge struct {
	Client  *pubsub.Client
	Project string
	Stack   *infra.Stack
	// URL returns the base URL of a function, e.g. "http://127.0.0.1:9011".
	URL func(function string) string
	// Concurrency overrides the number of deliveries in flight per
	// subscription; zero means the function's concurrency in the stack.
	Concurrency int
	// Credentials, when set, add their headers to every push (the dev
	// bridge signs a token of events.PushIdentity with the dev key, as
	// Pub/Sub attaches its OIDC token in the cloud).
	Credentials credentials.PerRPCCredentials
	HTTP        *http.Client
	Log         *slog.Logger
}

// Polling of an idle subscription backs off from idleMin to idleMax: an
// empty pull costs the broker little, and 20 ms keeps the first message
// after a quiet spell well inside the 50 ms lag budget.
const (
	idleMin = time.Millisecond
	idleMax = 5 * time.Millisecond
)

// Run delivers until ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range b.Stack.Subscriptions {
		if s.Push == "" {
			continue
		}
		fn, _ := b.Stack.Deployable(s.Push)
		n := b.Concurrency
		if n == 0 {
			n = fn.Concurrency
		}
		d := &delivery{b: b, sub: s, url: strings.TrimSuffix(b.URL(s.Push), "/") + PushPath(b.Project, s.Topic), slots: make(chan struct{}, n)}
		wg.Go(func() { d.run(ctx) })
	}
	wg.Wait()
	return nil
}

type delivery struct {
	b     *Bridge
	sub   infra.Subscription
	url   string
	slots chan struct{} // deliveries in flight

	mu      sync.Mutex
	acks    []string
	pending chan struct{} // signalled when acks has ids
}

func (d *delivery) name() string { return SubscriptionPath(d.b.Project, d.sub.Name) }

func (d *delivery) run(ctx context.Context) {
	d.pending = make(chan struct{}, 1)
	var inflight sync.WaitGroup
	done := make(chan struct{})
	go func() { d.acker(ctx); close(done) }()
	idle := idleMin
	for ctx.Err() == nil {
		free := cap(d.slots) - len(d.slots)
		if free == 0 {
			// Wait for a slot before pulling, so nothing waits here with its
			// ack deadline running.
			select {
			case d.slots <- struct{}{}:
				<-d.slots
			case <-ctx.Done():
			}
			continue
		}
		req := &pubsubpb.PullRequest{Subscription: d.name(), MaxMessages: int32(free)}
		//lint:ignore SA1019 pstest honours ReturnImmediately, and without it an empty pull blocks 500 ms
		req.ReturnImmediately = true
		resp, err := d.b.Client.SubscriptionAdminClient.Pull(ctx, req)
		if err != nil {
			if ctx.Err() == nil {
				d.b.Log.Warn("push bridge: pull failed", "subscription", d.sub.Name, "error", err.Error())
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(resp.ReceivedMessages) == 0 {
			sleep(ctx, idle)
			idle = min(2*idle, idleMax)
			continue
		}
		idle = idleMin
		for _, m := range resp.ReceivedMessages {
			d.slots <- struct{}{}
			inflight.Go(func() {
				defer func() { <-d.slots }()
				d.deliver(ctx, m)
			})
		}
	}
	inflight.Wait()
	<-done
}

// envelope is the body of a Pub/Sub push request.
type envelope struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes,omitempty"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
		OrderingKey string            `json:"orderingKey,omitempty"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int32  `json:"deliveryAttempt,omitempty"`
}

// Envelope encodes a message as Pub/Sub push delivers it.
func Envelope(subscription string, m *pubsubpb.PubsubMessage, attempt int32) ([]byte, error) {
	var e envelope
	e.Message.Data = m.Data
	e.Message.Attributes = m.Attributes
	e.Message.MessageID = m.MessageId
	e.Message.PublishTime = m.PublishTime.AsTime()
	e.Message.OrderingKey = m.OrderingKey
	e.Subscription = subscription
	e.DeliveryAttempt = attempt
	return json.Marshal(e)
}

func (d *delivery) deliver(ctx context.Context, m *pubsubpb.ReceivedMessage) {
	err := d.post(ctx, m)
	if err == nil {
		d.mu.Lock()
		d.acks = append(d.acks, m.AckId)
		d.mu.Unlock()
		select {
		case d.pending <- struct{}{}:
		default:
		}
		return
	}
	if ctx.Err() != nil {
		return // redelivered after its ack deadline, by the next run
	}
	wait := d.backoff(m.DeliveryAttempt)
	d.b.Log.Warn("push bridge: delivery failed, redelivering", "subscription", d.sub.Name,
		"message_id", m.Message.GetMessageId(), "attempt", m.DeliveryAttempt, "retry_in", wait.String(), "error", err.Error())
	// Redelivery after the backoff: the message becomes pullable again when
	// its ack deadline passes. Deadlines are whole seconds; a shorter
	// backoff is waited out here, then the message is released at once.
	deadline := wait / time.Second
	if deadline == 0 {
		sleep(ctx, wait)
	}
	_ = d.b.Client.SubscriptionAdminClient.ModifyAckDeadline(context.WithoutCancel(ctx), &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: d.name(), AckIds: []string{m.AckId}, AckDeadlineSeconds: int32(deadline),
	})
}

func (d *delivery) post(ctx context.Context, m *pubsubpb.ReceivedMessage) error {
	body, err := Envelope(d.name(), m.Message, m.DeliveryAttempt)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.sub.AckDeadline.Duration)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if d.b.Credentials != nil {
		md, err := d.b.Credentials.GetRequestMetadata(ctx)
		if err != nil {
			return fmt.Errorf("push credentials: %w", err)
		}
		for k, v := range md {
			req.Header.Set(k, v)
		}
	}
	resp, err := d.b.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// backoff is Pub/Sub's retry policy: minBackoff doubled per attempt, at most
// maxBackoff.
func (d *delivery) backoff(attempt int32) time.Duration {
	wait := d.sub.MinBackoff.Duration
	for i := int32(1); i < attempt && wait < d.sub.MaxBackoff.Duration; i++ {
		wait *= 2
	}
	return min(wait, d.sub.MaxBackoff.Duration)
}

// ackBatch caps one Acknowledge request (Pub/Sub takes up to 2,500 ids).
const ackBatch = 1000

// acker acknowledges delivered messages in batches: one request per
// message would cost the broker more than the deliveries.
func (d *delivery) acker(ctx context.Context) {
	for {
		select {
		case <-d.pending:
		case <-ctx.Done():
			d.flush(context.WithoutCancel(ctx))
			return
		}
		d.flush(ctx)
	}
}

func (d *delivery) flush(ctx context.Context) {
	d.mu.Lock()
	ids := d.acks
	d.acks = nil
	d.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), ackBatch)
		if err := d.b.Client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: d.name(), AckIds: ids[:n]}); err != nil {
			d.b.Log.Warn("push bridge: acknowledge failed; the messages will be redelivered", "subscription", d.sub.Name, "error", err.Error())
		}
		ids = ids[n:]
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
