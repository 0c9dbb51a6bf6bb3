package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shopfn/shopfn/functions/support"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/dial"
	"github.com/shopfn/shopfn/shared/store"
)

// Reconnecting `shopfn support chat`: a dropped stream (server restart,
// network, too slow a terminal, posting too fast) is rejoined from the
// last seq seen, waiting chatBackoff, doubled each time up to
// chatMaxBackoff, and giving up after chatMaxRetries failures in a row.
const (
	chatBackoff    = 250 * time.Millisecond
	chatMaxBackoff = 5 * time.Second
	chatMaxRetries = 5
	// chatMaxLine is the longest line read from standard input (a post is
	// at most 2,000 characters, up to 8,000 bytes; longer lines are
	// refused by the server).
	chatMaxLine = 64 << 10
)

func runSupportDev(ctx context.Context, o devOptions, log *slog.Logger, lis net.Listener) error {
	var cfg support.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	cfg.Port, cfg.DataDir = o.port, o.dataDir
	o.useAddr(&cfg.OrderAddr, "order")
	o.useAddr(&cfg.UserAddr, "user")
	return support.Run(ctx, cfg, log, lis)
}

// withSupport calls fn with a support service client. History is a read,
// safe to retry; Chat is a stream, never retried by the channel (the chat
// command rejoins by itself).
func withSupport(addr string, fn func(supportv1.SupportServiceClient) error) error {
	return withClient(addr, dial.Options{Idempotent: []string{
		supportv1.SupportService_History_FullMethodName,
	}}, supportv1.NewSupportServiceClient, fn)
}

func newSupportCmd() *cobra.Command {
	var addr, userAddr string
	cmd := &cobra.Command{
		Use:   "support",
		Short: "Chat with support about an order or a ticket (as the logged-in user)",
		Long: `Rooms are "order:<order id>" (customers: their own orders) or
"ticket:<any id>" (a ticket belongs to the customer who opens it first).
Agents (admins) may join any room.`,
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_SUPPORT_ADDR", "localhost:9006"), "support service address [$SHOPFN_SUPPORT_ADDR]")
	cmd.PersistentFlags().StringVar(&userAddr, "user-addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")), "user service the session was opened with [$SHOPFN_USER_ADDR]")

	var history int32
	var after int64
	chatCmd := &cobra.Command{
		Use:   "chat ROOM",
		Short: "Join a room: lines typed are posted, messages print as they arrive; Ctrl-D or Ctrl-C ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, s, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withSupport(addr, func(c supportv1.SupportServiceClient) error {
				ch := &chatClient{
					c: c, room: args[0], me: s.UserID, history: history, lastSeq: after,
					out: cmd.OutOrStdout(), log: cmd.ErrOrStderr(), pending: map[string]bool{},
				}
				return ch.run(ctx, readLines(cmd.InOrStdin()))
			})
		},
	}
	chatCmd.Flags().Int32Var(&history, "history", 20, "earlier messages to show on joining (at most 200)")
	chatCmd.Flags().Int64Var(&after, "after", 0, "show every message after this seq instead of --history")

	var (
		pageSize  int32
		pageToken string
		asJSON    bool
	)
	historyCmd := &cobra.Command{
		Use:   "history ROOM",
		Short: "Print a room's messages, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, _, err := withSession(cmd.Context(), userAddr)
			if err != nil {
				return err
			}
			return withSupport(addr, func(c supportv1.SupportServiceClient) error {
				token := pageToken
				for {
					resp, err := c.History(ctx, &supportv1.HistoryRequest{RoomId: args[0], PageSize: pageSize, PageToken: token})
					if err != nil {
						return err
					}
					if asJSON {
						return printProto(cmd.OutOrStdout(), resp)
					}
					for _, m := range resp.GetMessages() {
						printMessage(cmd.OutOrStdout(), m)
					}
					if token = resp.GetNextPageToken(); token == "" {
						return nil
					}
				}
			})
		},
	}
	historyCmd.Flags().Int32Var(&pageSize, "page-size", 200, "messages per call (at most 200)")
	historyCmd.Flags().StringVar(&pageToken, "page-token", "", "start at this next_page_token")
	historyCmd.Flags().BoolVar(&asJSON, "json", false, "print one page as JSON, with its next_page_token")

	cmd.AddCommand(chatCmd, historyCmd)
	return cmd
}

// printMessage prints "[seq] name: text".
func printMessage(w io.Writer, m *supportv1.ChatMessage) {
	fmt.Fprintf(w, "[%d] %s: %s\n", m.GetSeq(), m.GetAuthorName(), m.GetText())
}

// readLines sends the lines of r, without their line ends, and closes the
// channel at the end of r (Ctrl-D on a terminal).
func readLines(r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), chatMaxLine)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// chatClient is one `shopfn support chat`: it posts the lines it is given
// with client message ids, prints the room's messages, and when the stream
// drops it rejoins after the last seq it printed and posts again what the
// room has not shown yet (the ids make that safe: a post that did arrive
// is not stored twice).
type chatClient struct {
	c       supportv1.SupportServiceClient
	room    string
	me      string
	history int32
	out     io.Writer
	log     io.Writer

	lastSeq int64
	// unseen are the posts sent and not yet seen in the room, in order;
	// pending holds their client ids.
	unseen  []*supportv1.PostMessage
	pending map[string]bool
	eof     bool
	joined  bool // once, to say so
}

// run chats until the input ends and every post has been seen in the room,
// or ctx ends (Ctrl-C), or the stream fails for good.
func (ch *chatClient) run(ctx context.Context, lines <-chan string) error {
	backoff := chatBackoff
	for failures := 0; ; {
		joined, err := ch.session(ctx, lines)
		switch {
		case err == nil, ctx.Err() != nil:
			return nil
		case !rejoinable(err) || failures >= chatMaxRetries:
			return err
		}
		if joined {
			failures, backoff = 0, chatBackoff
		}
		failures++
		fmt.Fprintf(ch.log, "(%s: %s; rejoining after seq %d)\n", status.Code(err), status.Convert(err).Message(), ch.lastSeq)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, chatMaxBackoff)
	}
}

// rejoinable reports errors a rejoin from the last seq recovers from.
func rejoinable(err error) bool {
	switch apperr.Reason(err) {
	case "SLOW_CONSUMER", "RATE_LIMITED":
		return true
	}
	return status.Code(err) == codes.Unavailable
}

type received struct {
	resp *supportv1.ChatResponse
	err  error
}

// session runs one stream; joined reports whether it got as far as
// joining.
func (ch *chatClient) session(ctx context.Context, lines <-chan string) (joined bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ch.c.Chat(ctx)
	if err != nil {
		return false, err
	}
	join := &supportv1.JoinRoom{RoomId: ch.room, History: ch.history, AfterSeq: ch.lastSeq}
	if err := stream.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: join}}); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	if !ch.joined {
		ch.joined = true
		fmt.Fprintf(ch.log, "(joined %s; type a line to post it, Ctrl-D to leave)\n", first.GetJoined().GetRoomId())
	}
	post := func(p *supportv1.PostMessage) error {
		err := stream.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: p}})
		if errors.Is(err, io.EOF) {
			return nil // the stream ended; Recv says why
		}
		return err
	}
	for _, p := range ch.unseen {
		if err := post(p); err != nil {
			return true, err
		}
	}
	if ch.eof {
		stream.CloseSend()
		if len(ch.unseen) == 0 {
			return true, nil
		}
	}

	incoming := make(chan received)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case incoming <- received{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	input := lines
	if ch.eof {
		input = nil
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case line, ok := <-input:
			if !ok {
				ch.eof, input = true, nil
				stream.CloseSend()
				if len(ch.unseen) == 0 {
					return true, nil
				}
				continue
			}
			if line == "" {
				continue
			}
			p := &supportv1.PostMessage{Text: line, ClientMessageId: store.NewID("cm")}
			ch.unseen = append(ch.unseen, p)
			ch.pending[p.GetClientMessageId()] = true
			if err := post(p); err != nil {
				return true, err
			}
		case r := <-incoming:
			if r.err != nil {
				return true, r.err
			}
			m := r.resp.GetMessage()
			if m == nil || m.GetSeq() <= ch.lastSeq {
				continue
			}
			ch.lastSeq = m.GetSeq()
			printMessage(ch.out, m)
			if m.GetAuthorId() == ch.me && ch.pending[m.GetClientMessageId()] {
				ch.seen(m.GetClientMessageId())
			}
			if ch.eof && len(ch.unseen) == 0 {
				return true, nil
			}
		}
	}
}

// seen drops a post the room has shown.
func (ch *chatClient) seen(id string) {
	delete(ch.pending, id)
	for i, p := range ch.unseen {
		if p.GetClientMessageId() == id {
			ch.unseen = append(ch.unseen[:i], ch.unseen[i+1:]...)
			return
		}
	}
}
