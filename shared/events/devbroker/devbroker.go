// Package devbroker is Pub/Sub on one machine: it provisions the topics and
// subscriptions of infra/stack.yaml on the embedded broker (pstest) or the
// Pub/Sub emulator, and, because pstest has no push delivery, a push
// bridge that delivers each push subscription's messages to its function
// over HTTP the way Pub/Sub push does: the same JSON envelope, a 2xx
// acknowledges, anything else is redelivered after an exponential backoff,
// and after the subscription's maximum attempts the broker moves the
// message to the dead-letter topic.
package devbroker

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shopfn/shopfn/infra"
)

// Embedded starts the in-process broker on a loopback port; Close it when
// done. Its Addr is for relay.DialAddr.
func Embedded() *pstest.Server {
	return pstest.NewServerWithAddress("127.0.0.1:0")
}

// TopicPath and SubscriptionPath are the full resource names.
func TopicPath(project, topic string) string { return "projects/" + project + "/topics/" + topic }

// SubscriptionPath is the full name of a subscription.
func SubscriptionPath(project, sub string) string {
	return "projects/" + project + "/subscriptions/" + sub
}

// PushPath is the request path a push subscription posts to: the topic's
// resource name, from which functions-framework-go reads the topic.
func PushPath(project, topic string) string { return "/" + TopicPath(project, topic) }

// Provision creates the stack's topics and subscriptions; existing ones are
// left as they are. With pushURL non-nil, push subscriptions get a push
// config (the emulator delivers them itself): pushURL(function) is the
// function's base URL. With pushURL nil they are pull subscriptions for
// the Bridge.
func Provision(ctx context.Context, c *pubsub.Client, project string, stack *infra.Stack, pushURL func(function string) string) error {
	for _, t := range stack.Topics {
		_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: TopicPath(project, t.Name)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
	}
	for _, s := range stack.Subscriptions {
		sub := &pubsubpb.Subscription{
			Name:               SubscriptionPath(project, s.Name),
			Topic:              TopicPath(project, s.Topic),
			AckDeadlineSeconds: int32(s.AckDeadline.Seconds()),
			// Ordered delivery only where the stack asks for it: every topic
			// carries one event type, and an ordered pstest subscription
			// regroups all its messages on every pull.
			EnableMessageOrdering: s.Ordered,
		}
		if s.DeadLetterTopic != "" {
			sub.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{
				DeadLetterTopic:     TopicPath(project, s.DeadLetterTopic),
				MaxDeliveryAttempts: int32(s.MaxDeliveryAttempts),
			}
		}
		if s.MinBackoff.Duration > 0 {
			sub.RetryPolicy = &pubsubpb.RetryPolicy{
				MinimumBackoff: durationpb.New(s.MinBackoff.Duration),
				MaximumBackoff: durationpb.New(s.MaxBackoff.Duration),
			}
		}
		if s.Push != "" && pushURL != nil {
			sub.PushConfig = &pubsubpb.PushConfig{
				PushEndpoint: strings.TrimSuffix(pushURL(s.Push), "/") + PushPath(project, s.Topic),
			}
		}
		_, err := c.SubscriptionAdminClient.CreateSubscription(ctx, sub)
		if status.Code(err) == codes.AlreadyExists && sub.PushConfig != nil {
			// A kept emulator may push to the ports of an earlier run.
			err = c.SubscriptionAdminClient.ModifyPushConfig(ctx, &pubsubpb.ModifyPushConfigRequest{Subscription: sub.Name, PushConfig: sub.PushConfig})
		}
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("create subscription %s: %w", s.Name, err)
		}
	}
	return nil
}
