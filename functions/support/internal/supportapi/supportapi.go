// Package supportapi is the support service's gRPC transport: it turns
// stream messages and requests into chat calls, and chat messages into
// responses.
package supportapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shopfn/shopfn/functions/support/internal/chat"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// Page sizes of History.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// Server implements supportv1.SupportServiceServer.
type Server struct {
	supportv1.UnimplementedSupportServiceServer
	svc      *chat.Service
	stopping <-chan struct{}
}

// New returns the transport for svc. When stopping is closed (the instance
// is draining), open chats end at once with Unavailable/SHUTTING_DOWN, so
// their clients rejoin elsewhere instead of waiting out the grace period.
func New(svc *chat.Service, stopping <-chan struct{}) *Server {
	return &Server{svc: svc, stopping: stopping}
}

// Chat implements supportv1.SupportServiceServer.
//
// One goroutine receives and posts, another sends the room's messages;
// this one waits for the first of them to fail, for the participant to be
// dropped as a slow consumer, or for the server to stop, and returns that
// error, which ends the stream (and so unblocks a send stuck behind a
// client that does not read). A client that closes its sending side keeps
// receiving.
func (s *Server) Chat(stream supportv1.SupportService_ChatServer) error {
	ctx := stream.Context()
	caller, _ := auth.FromContext(ctx)
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	join := first.GetJoin()
	if join == nil {
		return chat.ErrNotJoined
	}
	sess, err := s.svc.Join(ctx, caller, chat.Join{Room: join.GetRoomId(), History: int(join.GetHistory()), AfterSeq: join.GetAfterSeq()})
	if err != nil {
		return err
	}
	defer sess.Close()
	joined := &supportv1.ChatResponse{Kind: &supportv1.ChatResponse_Joined{Joined: &supportv1.Joined{RoomId: sess.Room, LastSeq: sess.LastSeq}}}
	if err := stream.Send(joined); err != nil {
		return err
	}

	sent := make(chan error, 1)
	go func() { sent <- send(ctx, stream, sess) }()
	received := make(chan error, 1)
	go func() { received <- receive(ctx, stream, sess) }()
	for {
		select {
		case err := <-received:
			if err != nil {
				return err
			}
			received = nil // the client is done posting, not reading
		case err := <-sent:
			return err
		case <-sess.Done():
			return sess.Err()
		case <-s.stopping:
			return chat.ErrShuttingDown
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send delivers the session's messages until one cannot be delivered.
func send(ctx context.Context, stream supportv1.SupportService_ChatServer, sess *chat.Session) error {
	for {
		m, err := sess.Next(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&supportv1.ChatResponse{Kind: &supportv1.ChatResponse_Message{Message: toProto(m)}}); err != nil {
			return err
		}
	}
}

// receive posts the client's messages until it closes its side (nil) or
// one fails (invalid, rate limited).
func receive(ctx context.Context, stream supportv1.SupportService_ChatServer, sess *chat.Session) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch k := req.GetKind().(type) {
		case *supportv1.ChatRequest_Join:
			return chat.ErrAlreadyJoined
		case *supportv1.ChatRequest_Post:
			if _, err := sess.Post(ctx, k.Post.GetText(), k.Post.GetClientMessageId()); err != nil {
				return err
			}
		}
	}
}

// pageToken is the opaque History cursor, bound to the room: the seq of
// the last message of the previous page (seqs have no gaps, so it is all a
// cursor needs).
type pageToken struct {
	Room  string `json:"r"`
	After int64  `json:"a"`
}

var errBadPageToken = apperr.New(apperr.Invalid, errorsv1.ErrorReason_INVALID_PAGE_TOKEN, "invalid page_token: pass next_page_token of the same room")

// History implements supportv1.SupportServiceServer.
func (s *Server) History(ctx context.Context, req *supportv1.HistoryRequest) (*supportv1.HistoryResponse, error) {
	caller, _ := auth.FromContext(ctx)
	room := req.GetRoomId()
	var after int64
	if req.GetPageToken() != "" {
		raw, err := base64.RawURLEncoding.DecodeString(req.GetPageToken())
		var t pageToken
		if err != nil || json.Unmarshal(raw, &t) != nil || t.Room != room || t.After <= 0 {
			return nil, errBadPageToken
		}
		after = t.After
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	list, err := s.svc.History(ctx, caller, room, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &supportv1.HistoryResponse{Messages: make([]*supportv1.ChatMessage, 0, min(len(list), size))}
	if len(list) > size {
		list = list[:size]
		b, _ := json.Marshal(pageToken{Room: room, After: list[size-1].Seq})
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString(b)
	}
	for _, m := range list {
		resp.Messages = append(resp.Messages, toProto(m))
	}
	return resp, nil
}

func toProto(m chat.Message) *supportv1.ChatMessage {
	return &supportv1.ChatMessage{
		Id:              m.ID,
		RoomId:          m.Room,
		Seq:             m.Seq,
		AuthorId:        m.AuthorID,
		AuthorName:      m.AuthorName,
		FromAgent:       m.FromAgent,
		Text:            m.Text,
		CreateTime:      timestamppb.New(m.Created),
		ClientMessageId: m.ClientMessageID,
	}
}
