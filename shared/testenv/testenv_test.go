package testenv_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testTimeout bounds each smoke test: every call answers in milliseconds on
// a ready emulator, so a minute only means something is stuck.
const testTimeout = time.Minute

func TestPubSub(t *testing.T) {
	host := testenv.PubSub(t)

	t.Run("client options", func(t *testing.T) {
		project := testenv.ProjectID(t)
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		client, err := pubsub.NewClient(ctx, project, testenv.PubSubClientOptions(host)...)
		if err != nil {
			t.Fatalf("pubsub.NewClient: %v", err)
		}
		defer client.Close()
		publishAndReceive(ctx, t, client, project)
	})

	t.Run("environment", func(t *testing.T) {
		testenv.SetPubSubEnv(t, host)
		project := testenv.ProjectID(t)
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		client, err := pubsub.NewClient(ctx, project)
		if err != nil {
			t.Fatalf("pubsub.NewClient: %v", err)
		}
		defer client.Close()
		publishAndReceive(ctx, t, client, project)
	})
}

// publishAndReceive creates a topic and a subscription in project, publishes
// one message and checks that the subscription receives it intact.
func publishAndReceive(ctx context.Context, t *testing.T, client *pubsub.Client, project string) {
	t.Helper()
	topic, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{
		Name: "projects/" + project + "/topics/orders",
	})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	sub, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  "projects/" + project + "/subscriptions/orders-billing",
		Topic: topic.GetName(),
	})
	if err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}

	wantData := []byte(`{"orderId":"o-1"}`)
	wantAttrs := map[string]string{"type": "order.placed", "tenant": "t-1"}
	publisher := client.Publisher(topic.GetName())
	defer publisher.Stop()
	id, err := publisher.Publish(ctx, &pubsub.Message{Data: wantData, Attributes: wantAttrs}).Get(ctx)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}

	rctx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	var (
		mu  sync.Mutex
		got []*pubsub.Message
	)
	err = client.Subscriber(sub.GetName()).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		stop()
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatalf("Receive got no message before %v", rctx.Err())
	}
	m := got[0]
	if m.ID != id {
		t.Errorf("received message ID = %q, want %q (the published one)", m.ID, id)
	}
	if string(m.Data) != string(wantData) {
		t.Errorf("received Data = %q, want %q", m.Data, wantData)
	}
	if !maps.Equal(m.Attributes, wantAttrs) {
		t.Errorf("received Attributes = %v, want %v", m.Attributes, wantAttrs)
	}
}

func TestFirestore(t *testing.T) {
	host := testenv.Firestore(t)
	testenv.SetFirestoreEnv(t, host)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	project, other := testenv.ProjectID(t), testenv.ProjectID(t)
	client := newFirestoreClient(ctx, t, project, "")
	otherClient := newFirestoreClient(ctx, t, other, "")
	namedClient := newFirestoreClient(ctx, t, project, "shop")

	doc := client.Collection("orders").Doc("o-1")
	err := client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := tx.Get(doc); status.Code(err) != codes.NotFound {
			return errors.New("document exists before it is created")
		}
		return tx.Create(doc, map[string]any{"status": "placed", "totalCents": int64(1299)})
	})
	if err != nil {
		t.Fatalf("RunTransaction: %v", err)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatalf("Get after the transaction: %v", err)
	}
	want := map[string]any{"status": "placed", "totalCents": int64(1299)}
	if got := snap.Data(); !maps.Equal(got, want) {
		t.Fatalf("Get after the transaction = %v, want %v", got, want)
	}

	// The same path in another project and in a named database.
	otherDoc := otherClient.Collection("orders").Doc("o-1")
	namedDoc := namedClient.Collection("orders").Doc("o-1")
	for _, d := range []*firestore.DocumentRef{otherDoc, namedDoc} {
		if _, err := d.Set(ctx, want); err != nil {
			t.Fatalf("Set %s: %v", d.Path, err)
		}
	}

	testenv.ClearFirestore(t, host, project)
	wantExists(ctx, t, doc, false)
	wantExists(ctx, t, otherDoc, true)
	wantExists(ctx, t, namedDoc, true)

	testenv.ClearFirestoreDatabase(t, host, project, "shop")
	wantExists(ctx, t, namedDoc, false)
	wantExists(ctx, t, otherDoc, true)
}

// newFirestoreClient connects to the emulator named by FIRESTORE_EMULATOR_HOST,
// to the named database, or to (default) when database is empty.
func newFirestoreClient(ctx context.Context, t *testing.T, project, database string) *firestore.Client {
	t.Helper()
	if database == "" {
		database = firestore.DefaultDatabaseID
	}
	c, err := firestore.NewClientWithDatabase(ctx, project, database)
	if err != nil {
		t.Fatalf("firestore.NewClientWithDatabase(%q, %q): %v", project, database, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantExists checks whether doc exists.
func wantExists(ctx context.Context, t *testing.T, doc *firestore.DocumentRef, want bool) {
	t.Helper()
	_, err := doc.Get(ctx)
	switch {
	case err == nil && !want:
		t.Errorf("Get %s: exists, want it gone", doc.Path)
	case status.Code(err) == codes.NotFound && want:
		t.Errorf("Get %s: not found, want it to exist", doc.Path)
	case err != nil && status.Code(err) != codes.NotFound:
		t.Errorf("Get %s: %v", doc.Path, err)
	}
}
