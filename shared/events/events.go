// Package events is the consumer half of shopfn's eventing: it turns a
// pushed Pub/Sub message back into the shopfn event the outbox recorded,
// carries its trace on, and decides between acknowledging and redelivery.
//
// A function is an HTTP function of functions-framework-go (Function). It
// takes the request as Pub/Sub push sends it (the JSON envelope, on
// /projects/P/topics/T) and as Eventarc sends it (a CloudEvent of type
// google.cloud.pubsub.topic.v1.messagePublished, binary or structured).
// It is not a framework CloudEvent function, because the CloudEvents SDK
// receiver behind those pairs concurrent requests with the wrong responder
// goroutines, and a request at the end of a burst can hang until its
// deadline (seen here under load: github.com/cloudevents/sdk-go v2.15.2,
// client.EventReceiver).
//
// The producer half, the outbox relay, is package shared/events/relay; the
// development broker and push bridge are shared/events/devbroker. This
// package links no Pub/Sub client, so functions stay quick to start.
//
// The wire contract, written by the relay and read here: a Pub/Sub message
// whose data is the event's protobuf JSON and whose attributes carry the
// CloudEvent context in the binary-mode names of the CloudEvents Pub/Sub
// binding (ce-id, ce-type, ce-source, ce-subject, ce-time, plus
// ce-traceparent from the distributed-tracing extension).
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Message attribute names (CloudEvents Pub/Sub binding, binary mode).
const (
	AttrID          = "ce-id"
	AttrType        = "ce-type"
	AttrSource      = "ce-source"
	AttrSubject     = "ce-subject"
	AttrTime        = "ce-time"
	AttrSpecVersion = "ce-specversion"
	AttrContentType = "ce-datacontenttype"
	AttrTraceparent = "ce-traceparent"
)

// Message is one shopfn event as a consumer sees it.
type Message struct {
	ID      string // the event id; the same on every delivery of the event
	Type    string // one of the outbox Type constants
	Source  string
	Subject string
	Time    time.Time
	// Data is the event's protobuf JSON; Decode it.
	Data []byte
	// PubSubID is the Pub/Sub message id (differs if the relay published
	// the event twice; ID does not).
	PubSubID    string
	PublishTime time.Time
	// Traceparent is the W3C trace context of the request that recorded
	// the event; empty when it was not traced.
	Traceparent string
}

// Decode unmarshals the data into m, a message of proto/shopfn/events/v1.
// A failure is permanent: the same bytes never decode.
func (m Message) Decode(into proto.Message) error {
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(m.Data, into); err != nil {
		return Permanent(fmt.Errorf("decode %s %s: %w", m.Type, m.ID, err))
	}
	return nil
}

// messagePublished is the data of a google.cloud.pubsub.topic.v1.messagePublished
// CloudEvent: what functions-framework-go makes of a push request, and what
// Eventarc delivers.
type messagePublished struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// FromCloudEvent extracts the shopfn event from a messagePublished
// CloudEvent. Anything that is not one is a permanent failure.
func FromCloudEvent(ce cloudevents.Event) (Message, error) {
	return fromPublished(ce.Data())
}

// FromPush extracts the shopfn event from the body of a Pub/Sub push
// request, whose envelope has the same shape as a messagePublished event's
// data. Anything that is not one is a permanent failure.
func FromPush(body []byte) (Message, error) {
	return fromPublished(body)
}

func fromPublished(b []byte) (Message, error) {
	var d messagePublished
	if err := json.Unmarshal(b, &d); err != nil {
		return Message{}, Permanent(fmt.Errorf("not a Pub/Sub message: %w", err))
	}
	a := d.Message.Attributes
	m := Message{
		ID:          a[AttrID],
		Type:        a[AttrType],
		Source:      a[AttrSource],
		Subject:     a[AttrSubject],
		Data:        d.Message.Data,
		PubSubID:    d.Message.MessageID,
		PublishTime: d.Message.PublishTime,
		Traceparent: a[AttrTraceparent],
	}
	if m.ID == "" || m.Type == "" {
		return Message{}, Permanent(fmt.Errorf("message %s has no %s or %s attribute", d.Message.MessageID, AttrID, AttrType))
	}
	if t, err := time.Parse(time.RFC3339Nano, a[AttrTime]); err == nil {
		m.Time = t
	}
	return m, nil
}

// permanent marks an error that redelivery cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as a failure that no redelivery can fix (undecodable
// data, an image bomb, an unknown event type): the message is
// acknowledged and recorded as failed instead of being retried. nil stays
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Handler processes one event. Return nil when done (also when the event
// was already handled: consumers must be idempotent), a Permanent error
// when retrying cannot help, any other error to have it redelivered.
type Handler func(ctx context.Context, m Message) error

// maxBody caps a push request: Pub/Sub messages are at most 10 MB, and
// ours are small protobuf JSON.
const maxBody = 10 << 20

// Function adapts h to an HTTP function of functions-framework-go: it
// decodes the pushed message, continues the producer's trace, and turns
// h's result into the push response: success and permanent failures are
// acknowledged (204), the latter logged as failed and counted; other
// errors answer 500 so that Pub/Sub redelivers with backoff and, after the
// subscription's maximum attempts, dead-letters the message.
func Function(name string, log *slog.Logger, h Handler) http.HandlerFunc {
	tracer := otel.Tracer("github.com/shopfn/shopfn/shared/events")
	meter := otel.Meter("github.com/shopfn/shopfn/shared/events")
	handled, _ := meter.Int64Counter("shopfn.events.handled",
		metric.WithDescription("Events a function finished, by type and outcome (ok, failed, retry)."))
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method != http.MethodPost {
			http.Error(w, "POST a Pub/Sub push request", http.StatusMethodNotAllowed)
			return
		}
		m, err := decode(r)
		if err != nil {
			log.ErrorContext(ctx, "event failed permanently", "function", name, "error", err.Error())
			handled.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failed")))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if m.Traceparent != "" {
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": m.Traceparent})
		}
		ctx, span := tracer.Start(ctx, name+" "+m.Type, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.message.id", m.ID), attribute.String("cloudevents.event_type", m.Type)))
		defer span.End()
		attrs := []any{"function", name, "event_id", m.ID, "event_type", m.Type, "subject", m.Subject}
		err = h(ctx, m)
		switch {
		case err == nil:
			handled.Add(ctx, 1, metric.WithAttributes(attribute.String("type", m.Type), attribute.String("outcome", "ok")))
			log.InfoContext(ctx, "event handled", attrs...)
			w.WriteHeader(http.StatusNoContent)
		case IsPermanent(err):
			span.SetStatus(codes.Error, err.Error())
			handled.Add(ctx, 1, metric.WithAttributes(attribute.String("type", m.Type), attribute.String("outcome", "failed")))
			log.ErrorContext(ctx, "event failed permanently", append(attrs, "error", err.Error())...)
			w.WriteHeader(http.StatusNoContent)
		default:
			span.SetStatus(codes.Error, err.Error())
			handled.Add(ctx, 1, metric.WithAttributes(attribute.String("type", m.Type), attribute.String("outcome", "retry")))
			log.WarnContext(ctx, "event failed, to be redelivered", append(attrs, "error", err.Error())...)
			http.Error(w, "failed; redeliver", http.StatusInternalServerError)
		}
	}
}

// decode reads the message of a push request or of a CloudEvent request.
func decode(r *http.Request) (Message, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	if r.Header.Get("Ce-Id") != "" || strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents") {
		ce, err := cloudevents.NewEventFromHTTPRequest(r)
		if err != nil {
			return Message{}, Permanent(fmt.Errorf("undecodable CloudEvent: %w", err))
		}
		return FromCloudEvent(*ce)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return Message{}, Permanent(fmt.Errorf("read push request: %w", err))
	}
	return FromPush(body)
}
