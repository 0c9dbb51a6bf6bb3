package support_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/shopfn/shopfn/functions/support"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestoreStore runs the service with SHOPFN_STORE=firestore against
// the emulator: a ticket room claimed by its customer, posts (one resent)
// delivered in seq order, a rejoin that resumes, and History.
func TestFirestoreStore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	e := start(t, func(cfg *support.Config) { cfg.Store, cfg.ProjectID = "firestore", project })
	room := "ticket:fs"

	ann, joined := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	if joined.GetLastSeq() != 0 {
		t.Fatalf("Joined = %v, want seq 0", joined)
	}
	agent, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})
	ann.post("hello", "c-1")
	for _, p := range []*participant{ann, agent} {
		if m := p.expect(1, 1)[0]; m.GetText() != "hello" || m.GetClientMessageId() != "c-1" {
			t.Errorf("%s received %v", p.name, m)
		}
	}
	ann.post("hello", "c-1") // a resend: stored once
	agent.post("Hi Ann", "")
	for _, p := range []*participant{ann, agent} {
		if m := p.expect(1, 2)[0]; m.GetText() != "Hi Ann" || !m.GetFromAgent() {
			t.Errorf("%s received %v", p.name, m)
		}
	}
	// The ticket is Ann's: Bob may not join.
	if _, err := open(t, e.support, e.bob).join(&supportv1.JoinRoom{RoomId: room}); err == nil {
		t.Error("Bob joined Ann's ticket")
	}
	re, joined := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room, AfterSeq: 1})
	if joined.GetLastSeq() != 2 {
		t.Errorf("Joined(rejoin) = %v, want last seq 2", joined)
	}
	if m := re.next(); m.GetSeq() != 2 {
		t.Errorf("rejoin after seq 1 = %v, want seq 2", m)
	}
	if hist := e.history(t, e.ann, room); len(hist) != 2 || hist[0].GetClientMessageId() != "c-1" {
		t.Errorf("History = %v, want the 2 messages", hist)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "support.db")); !os.IsNotExist(err) {
		t.Errorf("support.db in the data dir: %v; want no SQLite file", err)
	}
}

// instance runs one more support instance on e's Firestore database (and
// key), as Cloud Run scales the service out, and returns a client of it.
func (e *env) instance(t *testing.T, mutate func(*support.Config)) (string, supportv1.SupportServiceClient) {
	t.Helper()
	cfg := e.cfg
	if mutate != nil {
		mutate(&cfg)
	}
	addr := run(t, func(ctx context.Context, lis net.Listener) error { return support.Run(ctx, cfg, discard(), lis) })
	return addr, supportv1.NewSupportServiceClient(conn(t, addr))
}

// TestFirestoreAcrossInstances has the participants of one room on two
// instances sharing the Firestore database: what is posted through either
// reaches everyone live, in seq order, once.
func TestFirestoreAcrossInstances(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	e := start(t, func(cfg *support.Config) { cfg.Store, cfg.ProjectID = "firestore", project })
	_, b := e.instance(t, nil)
	room := "ticket:scale"

	annA, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room}) // instance A
	annB := open(t, b, e.ann)                                      // Ann's second device, on B
	if _, err := annB.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	agentB := open(t, b, e.agent)
	if _, err := agentB.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	all := []*participant{annA, annB, agentB}

	agentB.post("Hello from B", "")
	for _, p := range all {
		if m := p.expect(1, 1)[0]; m.GetText() != "Hello from B" || !m.GetFromAgent() {
			t.Errorf("%s received %v", p.name, m)
		}
	}
	annA.post("Hello from A", "")
	for _, p := range all {
		if m := p.expect(1, 2)[0]; m.GetText() != "Hello from A" {
			t.Errorf("%s received %v", p.name, m)
		}
	}

	// Both instances post at once: everyone sees one sequence.
	const each = 10
	var wg sync.WaitGroup
	for _, p := range []*participant{annA, agentB} {
		wg.Go(func() {
			for i := range each {
				p.post(fmt.Sprintf("%s-%d", p.name, i), "")
			}
		})
	}
	got := make([][]*supportv1.ChatMessage, len(all))
	var rg sync.WaitGroup
	for i, p := range all {
		rg.Go(func() {
			for range 2 * each {
				resp, err := p.stream.Recv()
				if err != nil || resp.GetMessage() == nil {
					t.Errorf("%s: Recv = %v, %v", p.name, resp, err)
					return
				}
				got[i] = append(got[i], resp.GetMessage())
			}
		})
	}
	wg.Wait()
	rg.Wait()
	for i, p := range all {
		if len(got[i]) != 2*each {
			t.Fatalf("%s received %d messages, want %d", p.name, len(got[i]), 2*each)
		}
		for j, m := range got[i] {
			if want := int64(j + 3); m.GetSeq() != want || m.GetId() != got[0][j].GetId() {
				t.Fatalf("%s: message %d = seq %d id %s, want seq %d id %s", p.name, j, m.GetSeq(), m.GetId(), want, got[0][j].GetId())
			}
		}
	}
	// Once: the next message anyone receives is the next one posted.
	annA.post("the end", "")
	for _, p := range all {
		if m := p.next(); m.GetSeq() != 2*each+3 || m.GetText() != "the end" {
			t.Errorf("%s: after the burst = %v, want seq %d", p.name, m, 2*each+3)
		}
	}
}

// TestFirestoreSlowConsumerAcrossInstances has a participant on instance A
// that never reads while messages are posted through instance B: it is
// disconnected with SLOW_CONSUMER while the others receive everything.
func TestFirestoreSlowConsumerAcrossInstances(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project := testenv.ProjectID(t)
	e := start(t, func(cfg *support.Config) { cfg.Store, cfg.ProjectID, cfg.OutgoingBuffer = "firestore", project, 8 })
	_, b := e.instance(t, nil)
	room := "ticket:slow"
	// As in TestSlowConsumer: HTTP/2's smallest window for the slow client.
	slowClient := supportv1.NewSupportServiceClient(conn(t, e.addr, grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535)))
	slow := open(t, slowClient, e.ann)
	if _, err := slow.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	reader, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	poster := open(t, b, e.agent)
	if _, err := poster.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}

	outpaceSlow(t, poster, reader, slow)
}
