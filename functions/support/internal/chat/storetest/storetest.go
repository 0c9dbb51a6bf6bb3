// Package storetest is the conformance suite of chat.Store: the SQLite
// store (supportdb) and the Firestore one (supportfs) run the same tests.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/shared/store"
)

// Run runs the suite; open returns a fresh, empty, open store each time.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	t.Run("AppendAndAfter", func(t *testing.T) { testAppendAndAfter(t, open(t)) })
	t.Run("AppendAssignsSeqsWithoutGaps", func(t *testing.T) { testSeqsWithoutGaps(t, open(t)) })
	t.Run("AppendIsIdempotentPerAuthorAndClientID", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("Claim", func(t *testing.T) { testClaim(t, open(t)) })
}

// Msg returns a new message of author in room.
func Msg(room, author, text, clientID string) chat.Message {
	return chat.Message{ID: store.NewID("msg"), Room: room, AuthorID: author, AuthorName: author, Text: text,
		ClientMessageID: clientID, Created: time.Now().UTC().Truncate(time.Microsecond)}
}

func testAppendAndAfter(t *testing.T, s chat.Store) {
	ctx := context.Background()
	var stored []chat.Message
	for i, m := range []chat.Message{
		Msg("order:o1", "usr_a", "Where is my mug?", "c1"),
		{ID: "msg_2", Room: "order:o1", AuthorID: "usr_agent", AuthorName: "Agent Smith", FromAgent: true,
			Text: "Zoë’s 茶杯\nis on its way", Created: time.Now().UTC().Truncate(time.Microsecond)},
		Msg("order:o2", "usr_b", "other room", ""),
		Msg("order:o1", "usr_a", "thanks", ""),
	} {
		got, fresh, err := s.Append(ctx, m)
		want := m
		want.Seq = map[int]int64{0: 1, 1: 2, 2: 1, 3: 3}[i]
		if err != nil || !fresh || !equal(got, want) {
			t.Fatalf("Append(%+v) = %+v, %v, %v; want %+v, fresh", m, got, fresh, err, want)
		}
		if m.Room == "order:o1" {
			stored = append(stored, got)
		}
	}
	tests := []struct {
		after int64
		limit int
		want  []chat.Message
	}{
		{0, 10, stored},
		{0, 2, stored[:2]},
		{1, 10, stored[1:]},
		{2, 1, stored[2:]},
		{3, 10, nil},
		{99, 10, nil},
	}
	for _, tt := range tests {
		got, err := s.After(ctx, "order:o1", tt.after, tt.limit)
		if err != nil || len(got) != len(tt.want) {
			t.Fatalf("After(o1, %d, %d) = %+v, %v; want %+v", tt.after, tt.limit, got, err, tt.want)
		}
		for i := range got {
			if !equal(got[i], tt.want[i]) {
				t.Errorf("After(o1, %d, %d)[%d] = %+v, want %+v", tt.after, tt.limit, i, got[i], tt.want[i])
			}
		}
	}
	if got, err := s.After(ctx, "order:none", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("After(no room) = %+v, %v; want none", got, err)
	}
	for room, want := range map[string]int64{"order:o1": 3, "order:o2": 1, "order:none": 0} {
		if last, err := s.LastSeq(ctx, room); err != nil || last != want {
			t.Errorf("LastSeq(%s) = %d, %v; want %d", room, last, err, want)
		}
	}
}

// equal compares messages, their times by instant.
func equal(a, b chat.Message) bool {
	if !a.Created.Equal(b.Created) {
		return false
	}
	a.Created, b.Created = time.Time{}, time.Time{}
	return a == b
}

// Concurrency of the hot-record case (one room): small, since the
// Firestore emulator serialises transactions on one document slowly.
const (
	writers = 5
	each    = 3
)

func testSeqsWithoutGaps(t *testing.T, s chat.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Append(ctx, Msg("order:o1", fmt.Sprint("usr_", w), fmt.Sprint(i), "")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := s.After(ctx, "order:o1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*each {
		t.Fatalf("After(0) = %d messages, want %d", len(got), writers*each)
	}
	ids := map[string]bool{}
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, i+1)
		}
		ids[m.ID] = true
	}
	if len(ids) != writers*each {
		t.Errorf("%d distinct messages stored, want %d", len(ids), writers*each)
	}
	if last, err := s.LastSeq(ctx, "order:o1"); err != nil || last != writers*each {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, writers*each)
	}
}

func testIdempotent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
		ids   = map[string]bool{}
	)
	for range writers {
		wg.Go(func() {
			m, isNew, err := s.Append(ctx, Msg("ticket:t", "usr_a", "hello", "c-1"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[m.ID] = true
			if isNew {
				fresh++
			}
		})
	}
	wg.Wait()
	if fresh != 1 || len(ids) != 1 {
		t.Errorf("%d racing appends of one client id stored %d and returned %d ids, want 1 and 1", writers, fresh, len(ids))
	}
	tests := []struct {
		name  string
		m     chat.Message
		fresh bool
	}{
		{"same author, same id, other room", Msg("ticket:u", "usr_a", "hello", "c-1"), true},
		{"other author, same id", Msg("ticket:t", "usr_b", "hello", "c-1"), true},
		{"no id", Msg("ticket:t", "usr_a", "hello", ""), true},
		{"no id again", Msg("ticket:t", "usr_a", "hello", ""), true},
		// Author and client id are kept apart however they are spelt.
		{"ids that join alike", Msg("ticket:t", "usr_a", "hello", "x:y"), true},
		{"ids that join alike too", Msg("ticket:t", "usr_a:x", "hello", "y"), true},
		{"same author, same id", Msg("ticket:t", "usr_a", "changed text", "c-1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, isNew, err := s.Append(ctx, tt.m)
			if err != nil || isNew != tt.fresh {
				t.Fatalf("Append(%v) = %v, %v, %v; want fresh %v", tt.m, m, isNew, err, tt.fresh)
			}
			if !tt.fresh && (m.Text != "hello" || m.Seq != 1 || !ids[m.ID]) {
				t.Errorf("Append(resend) returned %+v, want the first post", m)
			}
		})
	}
	if last, _ := s.LastSeq(ctx, "ticket:t"); last != 6 {
		t.Errorf("LastSeq(ticket:t) = %d, want 6", last)
	}
	all, err := s.After(ctx, "ticket:t", 0, 100)
	if err != nil || len(all) != 6 || !slices.IsSortedFunc(all, func(a, b chat.Message) int { return int(a.Seq - b.Seq) }) {
		t.Errorf("After(ticket:t) = %d messages, %v; want 6 in seq order", len(all), err)
	}
}

func testClaim(t *testing.T, s chat.Store) {
	ctx := context.Background()
	if _, _, err := s.Append(ctx, Msg("ticket:t", "usr_agent", "hello", "")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		room, user, want string
	}{
		{"ticket:t", "usr_a", "usr_a"}, // a room with messages and no owner
		{"ticket:t", "usr_b", "usr_a"},
		{"ticket:new", "usr_b", "usr_b"},
		{"ticket:new", "usr_a", "usr_b"},
	}
	for _, tt := range tests {
		if got, err := s.Claim(ctx, tt.room, tt.user); err != nil || got != tt.want {
			t.Errorf("Claim(%s, %s) = %q, %v; want %q", tt.room, tt.user, got, err, tt.want)
		}
	}
	for room, want := range map[string]string{"ticket:t": "usr_a", "ticket:new": "usr_b", "ticket:none": ""} {
		if o, err := s.Owner(ctx, room); err != nil || o != want {
			t.Errorf("Owner(%s) = %q, %v; want %q", room, o, err, want)
		}
	}
	// Claiming keeps the messages and their seqs; a claimed room without
	// messages starts at seq 1.
	if last, err := s.LastSeq(ctx, "ticket:t"); err != nil || last != 1 {
		t.Errorf("LastSeq(ticket:t) after Claim = %d, %v; want 1", last, err)
	}
	if m, _, err := s.Append(ctx, Msg("ticket:new", "usr_b", "first", "")); err != nil || m.Seq != 1 {
		t.Errorf("Append(claimed room) = seq %d, %v; want 1", m.Seq, err)
	}
	// Racing claims of a new room agree on one owner.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		owners = map[string]bool{}
	)
	for w := range writers {
		wg.Go(func() {
			o, err := s.Claim(ctx, "ticket:race", fmt.Sprint("usr_", w))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			owners[o] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(owners) != 1 {
		t.Errorf("racing claims returned owners %v, want one", owners)
	}
}
