package support_test

import (
	"os"
	"path/filepath"
	"testing"

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
