// Package supportfs keeps chat rooms and their messages in Firestore (the
// support service's own named database).
//
// Documents:
//
//   - rooms/<room id>: {owner_id, last_seq, create_time}. last_seq is the
//     seq of the room's last message: an Append reads it and writes
//     last_seq+1 with the message in one transaction, so seqs are 1, 2, 3…
//     without gaps or duplicates whichever instance appends.
//   - rooms/<room id>/messages/<seq, 20 digits>: the message; named by its
//     seq, so a seq is stored once and the documents sort in seq order.
//   - rooms/<room id>/client_ids/<author>:<client message id> (both
//     query-escaped, so the separator is unambiguous): {seq}. Firestore has
//     no unique index: this document, created in the message's transaction,
//     makes a resent post (same author, same client id, same room) stored
//     once.
//
// Room ids are path-escaped into document ids (valid room ids need no
// escaping). Every read-modify-write runs in a transaction (reads first, no
// side effects: the function may run several times); nothing is cached.
// After reads a room's messages with seq > after ordered by seq, a
// single-field index Firestore creates by itself.
//
// The room document is the hot spot: every message of a room is one
// transaction on it, so one room takes at most a few hundred posts per
// second in Firestore (far more than a support chat needs); rooms do not
// contend with one another.
//
// Hub (hub.go) delivers the messages to the participants across instances:
// one snapshot listener per room with participants on this instance feeds
// them through the in-process fan-out.
package supportfs

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// The collections.
const (
	roomsColl     = "rooms"
	messagesColl  = "messages"
	clientIDsColl = "client_ids"
)

// txAttempts is how many times a transaction is tried when Firestore
// aborts it for contention (the client's default is 5): the posters of one
// busy room all write its document, and the client backs off exponentially
// between attempts, so 10 rides out a burst without looping for long.
const txAttempts = 10

// Store is chat.Store on Firestore.
type Store struct {
	*fsstore.Conn
}

var _ chat.Store = (*Store)(nil)

// Open starts connecting to the database of project in the background and
// returns the store at once; its calls wait for the connection. Done and
// Err report when it is ready, or why it failed.
func Open(ctx context.Context, project, database string) *Store {
	return &Store{Conn: fsstore.OpenInBackground(ctx, project, database)}
}

// roomDoc is a rooms document.
type roomDoc struct {
	Owner   string    `firestore:"owner_id"`
	LastSeq int64     `firestore:"last_seq"`
	Created time.Time `firestore:"create_time"`
}

// messageDoc is a messages document.
type messageDoc struct {
	Room            string    `firestore:"room_id"`
	Seq             int64     `firestore:"seq"`
	ID              string    `firestore:"id"`
	AuthorID        string    `firestore:"author_id"`
	AuthorName      string    `firestore:"author_name"`
	FromAgent       bool      `firestore:"from_agent"`
	Text            string    `firestore:"text"`
	ClientMessageID string    `firestore:"client_message_id"`
	Created         time.Time `firestore:"create_time"`
}

// clientIDDoc is a client_ids document: the seq of the message stored for
// the post.
type clientIDDoc struct {
	Seq int64 `firestore:"seq"`
}

func (d messageDoc) message() chat.Message {
	return chat.Message{ID: d.ID, Room: d.Room, Seq: d.Seq, AuthorID: d.AuthorID, AuthorName: d.AuthorName,
		FromAgent: d.FromAgent, Text: d.Text, ClientMessageID: d.ClientMessageID, Created: d.Created.UTC()}
}

// roomRef is the room's document; an id that cannot name one (no valid
// room id) is an error.
func roomRef(c *firestore.Client, room string) (*firestore.DocumentRef, error) {
	id := url.PathEscape(room)
	if id == "" || id == "." || id == ".." || len(id) > 1500 || strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__") {
		return nil, fmt.Errorf("room id %q cannot be stored", room)
	}
	return c.Collection(roomsColl).Doc(id), nil
}

func messageRef(room *firestore.DocumentRef, seq int64) *firestore.DocumentRef {
	return room.Collection(messagesColl).Doc(fmt.Sprintf("%020d", seq))
}

func clientIDRef(room *firestore.DocumentRef, author, clientID string) *firestore.DocumentRef {
	return room.Collection(clientIDsColl).Doc(url.QueryEscape(author) + ":" + url.QueryEscape(clientID))
}

// readRoom reads the room in tx; a room that does not exist is the zero
// roomDoc and false.
func readRoom(tx *firestore.Transaction, ref *firestore.DocumentRef) (roomDoc, bool, error) {
	snap, err := tx.Get(ref)
	if fsstore.IsNotFound(err) {
		return roomDoc{}, false, nil
	}
	if err != nil {
		return roomDoc{}, false, fmt.Errorf("read room %s: %w", ref.ID, err)
	}
	var d roomDoc
	if err := snap.DataTo(&d); err != nil {
		return roomDoc{}, false, fmt.Errorf("read room %s: %w", ref.ID, err)
	}
	return d, true, nil
}

// appendTries bounds the runs of an Append whose client-id document was
// created by a concurrent Append between this one's read and its commit:
// the next run finds that post.
const appendTries = 3

// Append implements chat.Store.
func (s *Store) Append(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return chat.Message{}, false, err
	}
	rref, err := roomRef(c, m.Room)
	if err != nil {
		return chat.Message{}, false, err
	}
	var cref *firestore.DocumentRef
	if m.ClientMessageID != "" {
		cref = clientIDRef(rref, m.AuthorID, m.ClientMessageID)
	}
	var (
		out   chat.Message
		fresh bool
	)
	for try := 1; ; try++ {
		err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			if cref != nil {
				snap, err := tx.Get(cref)
				switch {
				case err == nil:
					var d clientIDDoc
					if err := snap.DataTo(&d); err != nil {
						return fmt.Errorf("read client id: %w", err)
					}
					msnap, err := tx.Get(messageRef(rref, d.Seq))
					if err != nil {
						return fmt.Errorf("read message %d of %s: %w", d.Seq, m.Room, err)
					}
					var md messageDoc
					if err := msnap.DataTo(&md); err != nil {
						return fmt.Errorf("read message %d of %s: %w", d.Seq, m.Room, err)
					}
					out, fresh = md.message(), false
					return nil
				case !fsstore.IsNotFound(err):
					return fmt.Errorf("read client id: %w", err)
				}
			}
			room, exists, err := readRoom(tx, rref)
			if err != nil {
				return err
			}
			msg := m
			msg.Seq = room.LastSeq + 1
			if exists {
				err = tx.Update(rref, []firestore.Update{{Path: "last_seq", Value: msg.Seq}})
			} else {
				err = tx.Create(rref, roomDoc{LastSeq: msg.Seq, Created: msg.Created.UTC()})
			}
			if err != nil {
				return fmt.Errorf("next seq of %s: %w", m.Room, err)
			}
			if err := tx.Create(messageRef(rref, msg.Seq), messageDoc{Room: msg.Room, Seq: msg.Seq, ID: msg.ID, AuthorID: msg.AuthorID,
				AuthorName: msg.AuthorName, FromAgent: msg.FromAgent, Text: msg.Text, ClientMessageID: msg.ClientMessageID,
				Created: msg.Created.UTC()}); err != nil {
				return fmt.Errorf("insert message: %w", err)
			}
			if cref != nil {
				if err := tx.Create(cref, clientIDDoc{Seq: msg.Seq}); err != nil {
					return fmt.Errorf("insert client id: %w", err)
				}
			}
			out, fresh = msg, true
			return nil
		}, firestore.MaxAttempts(txAttempts))
		if err == nil {
			return out, fresh, nil
		}
		if !fsstore.IsAlreadyExists(err) || try == appendTries || ctx.Err() != nil {
			return chat.Message{}, false, fmt.Errorf("append to %s: %w", m.Room, err)
		}
	}
}

// After implements chat.Store.
func (s *Store) After(ctx context.Context, room string, after int64, limit int) ([]chat.Message, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	rref, err := roomRef(c, room)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	snaps, err := rref.Collection(messagesColl).Where("seq", ">", after).OrderBy("seq", firestore.Asc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("read messages of %s: %w", room, err)
	}
	out := make([]chat.Message, 0, len(snaps))
	for _, snap := range snaps {
		var d messageDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("read message %s of %s: %w", snap.Ref.ID, room, err)
		}
		out = append(out, d.message())
	}
	return out, nil
}

// room reads the room outside a transaction; a room that does not exist
// is the zero roomDoc.
func (s *Store) room(ctx context.Context, room string) (roomDoc, *firestore.Client, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return roomDoc{}, nil, err
	}
	rref, err := roomRef(c, room)
	if err != nil {
		return roomDoc{}, nil, err
	}
	snap, err := rref.Get(ctx)
	if fsstore.IsNotFound(err) {
		return roomDoc{}, c, nil
	}
	if err != nil {
		return roomDoc{}, nil, fmt.Errorf("read room %s: %w", room, err)
	}
	var d roomDoc
	if err := snap.DataTo(&d); err != nil {
		return roomDoc{}, nil, fmt.Errorf("read room %s: %w", room, err)
	}
	return d, c, nil
}

// LastSeq implements chat.Store.
func (s *Store) LastSeq(ctx context.Context, room string) (int64, error) {
	d, _, err := s.room(ctx, room)
	return d.LastSeq, err
}

// Owner implements chat.Store.
func (s *Store) Owner(ctx context.Context, room string) (string, error) {
	d, _, err := s.room(ctx, room)
	return d.Owner, err
}

// Claim implements chat.Store. Only the first claim writes; later ones
// read.
func (s *Store) Claim(ctx context.Context, room, user string) (string, error) {
	d, c, err := s.room(ctx, room)
	if err != nil || d.Owner != "" {
		return d.Owner, err
	}
	rref, err := roomRef(c, room)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	var owner string
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		d, exists, err := readRoom(tx, rref)
		if err != nil {
			return err
		}
		switch {
		case d.Owner != "":
			owner = d.Owner
			return nil
		case exists:
			err = tx.Update(rref, []firestore.Update{{Path: "owner_id", Value: user}})
		default:
			err = tx.Create(rref, roomDoc{Owner: user, Created: now})
		}
		if err != nil {
			return fmt.Errorf("claim %s: %w", room, err)
		}
		owner = user
		return nil
	}, firestore.MaxAttempts(txAttempts))
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", room, err)
	}
	return owner, nil
}
