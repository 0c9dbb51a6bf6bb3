// Package chat is the support service's domain: rooms, their messages, who
// may join which room, and how messages reach the participants.
//
// A message is stored (and given its place, seq, in the store's
// transaction) before anyone receives it; the Hub then delivers it to every
// participant of the room, each from the seq it has seen, so a participant
// sees the room's messages in order, without gaps or duplicates, whether
// it stayed connected, reconnected, or is served by another instance.
package chat

import (
	"context"
	"strings"
	"time"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
)

// Kind is what a room is about.
type Kind string

// The kinds of room.
const (
	// KindOrder rooms ("order:<order id>") are about one order; its
	// customer and the agents may join.
	KindOrder Kind = "order"
	// KindTicket rooms ("ticket:<ticket id>") belong to the customer who
	// joined first; the agents may join too.
	KindTicket Kind = "ticket"
)

// Room is a parsed room id.
type Room struct {
	// ID is the room id as clients write it: "order:ord_…".
	ID   string
	Kind Kind
	// Key is the part after the colon: the order or ticket id.
	Key string
}

// ParseRoom parses "order:<id>" or "ticket:<id>".
func ParseRoom(id string) (Room, error) {
	kind, key, ok := strings.Cut(id, ":")
	if !ok || key == "" || (Kind(kind) != KindOrder && Kind(kind) != KindTicket) {
		return Room{}, ErrInvalidRoom
	}
	return Room{ID: id, Kind: Kind(kind), Key: key}, nil
}

// Message is one stored message of a room.
type Message struct {
	ID   string
	Room string
	// Seq is the message's place in its room: 1, 2, 3… without gaps,
	// assigned by the store when the message is stored.
	Seq        int64
	AuthorID   string
	AuthorName string
	// FromAgent says the author is an admin (a support agent).
	FromAgent bool
	Text      string
	// ClientMessageID is the author's id for the post, "" if none was given:
	// the author's repeated posts with one id are stored once.
	ClientMessageID string
	Created         time.Time
}

// The domain's errors.
var (
	ErrInvalidRoom   = apperr.Invalidf("room_id", `want "order:<order id>" or "ticket:<ticket id>"`)
	ErrRoomForbidden = apperr.New(apperr.PermissionDenied, errorsv1.ErrorReason_ROOM_FORBIDDEN, "you may not join this room")
	ErrNotJoined     = apperr.New(apperr.Invalid, errorsv1.ErrorReason_NOT_JOINED, "join a room first: the first message must be a join")
	ErrAlreadyJoined = apperr.Invalidf("join", "this stream has joined a room already; open another stream for another room")
	ErrBlankText     = apperr.Invalidf("post.text", "must not be blank")
	ErrRateLimited   = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_RATE_LIMITED, "posting too fast; rejoin with after_seq and post more slowly")
	ErrSlowConsumer  = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_SLOW_CONSUMER, "you fell too far behind the room; rejoin with after_seq to resume")
	ErrShuttingDown  = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_SHUTTING_DOWN, "the server is shutting down; rejoin with after_seq to resume")
	ErrDependency    = apperr.New(apperr.Unavailable, errorsv1.ErrorReason_DEPENDENCY_UNAVAILABLE, "a service support depends on is unavailable; try again")
)

// Store keeps rooms and their messages.
type Store interface {
	// Append stores m as its room's next message: it assigns m.Seq (one
	// more than the room's last, in the same transaction as the insert)
	// and returns the message as stored and true. When m.ClientMessageID
	// is set and m's author already posted a message with that id in the
	// room, nothing is stored: it returns that earlier message and false.
	Append(ctx context.Context, m Message) (Message, bool, error)
	// After returns up to limit messages of room with seq > after, in seq
	// order.
	After(ctx context.Context, room string, after int64, limit int) ([]Message, error)
	// LastSeq returns the seq of room's last message, 0 if it has none.
	LastSeq(ctx context.Context, room string) (int64, error)
	// Claim makes user the owner of room unless it has one, and returns
	// the owner.
	Claim(ctx context.Context, room, user string) (string, error)
	// Owner returns the owner of room, "" if it has none.
	Owner(ctx context.Context, room string) (string, error)
}

// Hub delivers each room's messages to the participants connected to it.
//
// Publish is called with every message after it is stored; a Subscription
// yields the room's messages with a seq above the one it started after —
// the stored ones first, then the live ones — in seq order, with no gap and
// no duplicate, whatever order publications arrive in and however often
// (publishing a message twice is harmless). A subscriber whose buffer of
// undelivered messages overflows is dropped with ErrSlowConsumer: a slow
// receiver never holds up the room.
//
// The SQLite adapter (supportdb.Hub) broadcasts in process: one instance
// owns its SQLite file, so every participant of a room is connected to it.
// The Firestore adapter (supportfs.Hub) spans instances behind the same
// contract: a listener per room on the room's messages with a seq above
// the last it saw, ordered by seq, feeds the in-process fan-out (Publish
// has nothing to do, the committed write is the publication).
type Hub interface {
	// Publish announces m, already stored, to the room's subscribers.
	Publish(ctx context.Context, m Message) error
	// Subscribe starts delivering room's messages with seq > after. The
	// subscription lasts until it is closed or fails.
	Subscribe(ctx context.Context, room string, after int64) (Subscription, error)
}

// Subscription is one participant's feed of a room's messages.
type Subscription interface {
	// Next returns the next message, waiting for one; after the
	// subscription failed, it returns why (ErrSlowConsumer).
	Next(ctx context.Context) (Message, error)
	// Done is closed when the subscription fails or is closed.
	Done() <-chan struct{}
	// Err says why the subscription ended (nil when it was closed).
	Err() error
	// Close ends the subscription.
	Close()
}

// Orders tells whether the caller may see an order. The caller is the one
// whose credentials ctx carries (an incoming request's bearer token).
type Orders interface {
	// CheckAccess returns nil when the caller may see order id,
	// ErrRoomForbidden when not (it is another customer's, or there is no
	// such order), and ErrDependency when it cannot tell.
	CheckAccess(ctx context.Context, id string) error
}

// Names finds users' display names, with the credentials ctx carries.
type Names interface {
	// DisplayName returns user's display name, or ErrDependency.
	DisplayName(ctx context.Context, user string) (string, error)
}
