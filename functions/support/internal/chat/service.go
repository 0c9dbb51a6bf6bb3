package chat

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/store"
)

// History replayed on joining.
const (
	// DefaultHistory is how many earlier messages a join replays when it
	// does not say: a screenful and then some.
	DefaultHistory = 50
	// MaxHistory caps the replay; older messages are a History call away.
	MaxHistory = 200
)

// Limits bound what one user may post.
type Limits struct {
	// PostsPerSecond and PostBurst are the per-user token bucket of posts,
	// across all of the user's streams: a person types far slower than 5
	// messages a second, a script flooding a room does not.
	PostsPerSecond float64 `envconfig:"SHOPFN_SUPPORT_POSTS_PER_SECOND" default:"5"`
	PostBurst      int     `envconfig:"SHOPFN_SUPPORT_POST_BURST" default:"10"`
}

// maxGrants bounds the remembered access decisions: 10,000 customer-room
// pairs are well under a megabyte, and more active customers than that on
// one instance only cost a re-check now and then.
const maxGrants = 10_000

// Service implements the chat rules.
type Service struct {
	store   Store
	hub     Hub
	orders  Orders
	names   Names
	limiter *auth.Limiter
	now     func() time.Time

	// grants remembers which customer may see which room. A grant never
	// expires: an order's customer never changes, nor does a ticket's
	// owner once set. So joins and History calls after the first skip the
	// order service (or the store), and nothing needs invalidating.
	mu     sync.Mutex
	grants map[grant]struct{}
}

type grant struct{ user, room string }

// NewService returns the service.
func NewService(s Store, h Hub, o Orders, n Names, l Limits) *Service {
	return &Service{
		store: s, hub: h, orders: o, names: n,
		limiter: auth.NewLimiter(l.PostsPerSecond, l.PostBurst),
		now:     time.Now,
		grants:  make(map[grant]struct{}),
	}
}

// Join is what a participant asks when joining a room.
type Join struct {
	Room string
	// History is how many earlier messages to replay: 0 means
	// DefaultHistory, more than MaxHistory means MaxHistory.
	History int
	// AfterSeq, when positive, resumes instead: every message with a higher
	// seq is delivered, History is ignored.
	AfterSeq int64
}

// Join admits caller to a room and subscribes it to the room's messages:
// the requested history, then every new one.
func (s *Service) Join(ctx context.Context, caller auth.Principal, j Join) (*Session, error) {
	room, err := ParseRoom(j.Room)
	if err != nil {
		return nil, err
	}
	if caller.Role != auth.RoleCustomer && caller.Role != auth.RoleAdmin {
		return nil, ErrRoomForbidden // services read History; they do not chat
	}
	if err := s.authorize(ctx, caller, room, true); err != nil {
		return nil, err
	}
	name, err := s.names.DisplayName(ctx, caller.Subject)
	if err != nil {
		return nil, err
	}
	last, err := s.store.LastSeq(ctx, room.ID)
	if err != nil {
		return nil, err
	}
	after := j.AfterSeq
	if after <= 0 {
		history := j.History
		if history <= 0 {
			history = DefaultHistory
		}
		after = max(0, last-int64(min(history, MaxHistory)))
	}
	// A client cannot have seen what was never stored; do not let a wrong
	// seq skip messages still to come.
	after = min(after, last)
	sub, err := s.hub.Subscribe(ctx, room.ID, after)
	if err != nil {
		return nil, err
	}
	return &Session{
		Room: room.ID, LastSeq: last, svc: s, sub: sub,
		author: author{id: caller.Subject, name: name, agent: caller.IsAdmin()},
	}, nil
}

// History returns up to limit messages of room with seq > after, oldest
// first, if caller may see the room.
func (s *Service) History(ctx context.Context, caller auth.Principal, roomID string, after int64, limit int) ([]Message, error) {
	room, err := ParseRoom(roomID)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, caller, room, false); err != nil {
		return nil, err
	}
	return s.store.After(ctx, room.ID, after, limit)
}

// authorize decides whether caller may see room: admins (agents) and
// services any room; customers the rooms of their own orders, and the
// ticket rooms they own. When claim is set, a customer joining a ticket room
// nobody owns becomes its owner.
func (s *Service) authorize(ctx context.Context, caller auth.Principal, room Room, claim bool) error {
	switch {
	case caller.Role == auth.RoleAdmin, caller.Role == auth.RoleService:
		return nil
	case caller.Role != auth.RoleCustomer || caller.Subject == "":
		return ErrRoomForbidden
	}
	g := grant{caller.Subject, room.ID}
	s.mu.Lock()
	_, ok := s.grants[g]
	s.mu.Unlock()
	if ok {
		return nil
	}
	if err := s.check(ctx, caller, room, claim); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.grants) >= maxGrants {
		clear(s.grants) // simple and rare: grants are re-checked on use
	}
	s.grants[g] = struct{}{}
	s.mu.Unlock()
	return nil
}

// check asks the order service or the store whether the customer may see
// room.
func (s *Service) check(ctx context.Context, caller auth.Principal, room Room, claim bool) error {
	switch room.Kind {
	case KindOrder:
		return s.orders.CheckAccess(ctx, room.Key)
	case KindTicket:
		var (
			owner string
			err   error
		)
		if claim {
			owner, err = s.store.Claim(ctx, room.ID, caller.Subject)
		} else {
			owner, err = s.store.Owner(ctx, room.ID)
		}
		if err != nil {
			return err
		}
		if owner != caller.Subject {
			return ErrRoomForbidden
		}
		return nil
	}
	return ErrInvalidRoom
}

type author struct {
	id, name string
	agent    bool
}

// Session is one participant in one room: what it posts goes to the room,
// and Next yields the room's messages for it.
type Session struct {
	// Room is the room joined.
	Room string
	// LastSeq was the room's last seq when joining: messages up to it are
	// history, later ones are live.
	LastSeq int64

	svc    *Service
	sub    Subscription
	author author
}

// Post stores text as the participant's next message in the room, then
// publishes it. A repeated clientID of this author in this room stores
// nothing new; the message first stored is published again, which
// subscribers that have it ignore.
func (s *Session) Post(ctx context.Context, text, clientID string) (Message, error) {
	if strings.TrimSpace(text) == "" {
		return Message{}, ErrBlankText
	}
	if ok, wait := s.svc.limiter.Allow(s.author.id); !ok {
		return Message{}, ErrRateLimited.With("retry_after_ms", strconv.FormatInt(wait.Milliseconds()+1, 10))
	}
	m, _, err := s.svc.store.Append(ctx, Message{
		ID: store.NewID("msg"), Room: s.Room,
		AuthorID: s.author.id, AuthorName: s.author.name, FromAgent: s.author.agent,
		Text: text, ClientMessageID: clientID,
		Created: s.svc.now().UTC().Truncate(time.Microsecond), // what the store keeps
	})
	if err != nil {
		return Message{}, fmt.Errorf("store message: %w", err)
	}
	// Once stored, the message goes out even if the poster has gone.
	if err := s.svc.hub.Publish(context.WithoutCancel(ctx), m); err != nil {
		return Message{}, fmt.Errorf("publish message %d of %s: %w", m.Seq, m.Room, err)
	}
	return m, nil
}

// Next returns the room's next message for this participant.
func (s *Session) Next(ctx context.Context) (Message, error) { return s.sub.Next(ctx) }

// Done is closed when the participant's feed ends (see Err).
func (s *Session) Done() <-chan struct{} { return s.sub.Done() }

// Err says why the feed ended: ErrSlowConsumer, or nil after Close.
func (s *Session) Err() error { return s.sub.Err() }

// Close leaves the room.
func (s *Session) Close() { s.sub.Close() }
