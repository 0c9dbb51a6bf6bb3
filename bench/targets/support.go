package targets

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// The room the support target starts with: a ticket of the bench customer
// holding supportMessages messages, one page of History's default size.
const (
	supportRoom     = "ticket:bench"
	supportMessages = 50
)

// supportEnv keeps the per-caller rate limit on (its cost is measured) but
// high enough that one load generator is never throttled.
var supportEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// SupportHistory is the support deployable on a data directory holding a
// ticket room of supportMessages messages, its owner's account and the
// development key. Probe and load are the owner's History of the room, one
// page of 50: token check, the ownership check (a point read), a range read
// of 50 rows and a 10 KB response.
//
// Chat is not loaded here: joining asks the user service for the
// participant's name, and the harness runs the target alone.
func SupportHistory() benchkit.Target {
	var token string
	req := &supportv1.HistoryRequest{RoomId: supportRoom, PageSize: supportMessages}
	history := func(ctx context.Context, c supportv1.SupportServiceClient) error {
		resp, err := c.History(auth.WithBearer(ctx, token), req)
		if err == nil && len(resp.GetMessages()) != supportMessages {
			err = fmt.Errorf("history returned %d messages, want %d", len(resp.GetMessages()), supportMessages)
		}
		return err
	}
	return benchkit.Target{
		Name:    "support-history",
		Package: "./functions/support/cmd",
		Env:     supportEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			var err error
			if token, err = seedSupport(ctx, scratch); err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			return history(ctx, supportv1.NewSupportServiceClient(cc))
		},
		Call: func(_ context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			c := supportv1.NewSupportServiceClient(cc)
			return func(ctx context.Context) error { return history(ctx, c) }, nil
		},
	}
}

// seedSupport runs the user and support services in this process on
// scratch/data, registers the bench customer, and has it post
// supportMessages messages to supportRoom; it returns the customer's token.
func seedSupport(ctx context.Context, scratch string) (token string, err error) {
	dataDir := filepath.Join(scratch, "data")
	var ucfg user.Config
	if err := config.Load(&ucfg); err != nil {
		return "", err
	}
	ucfg.DataDir = dataDir
	ucfg.TokenTTL = 7 * 24 * time.Hour // longer than any benchmark run
	var scfg support.Config
	if err := config.Load(&scfg); err != nil {
		return "", err
	}
	scfg.DataDir = dataDir
	scfg.PostsPerSecond, scfg.PostBurst = 1e9, 1e9

	ctx, cancel := context.WithCancel(ctx)
	var stops []chan error
	defer func() {
		cancel()
		for _, done := range stops {
			if runErr := <-done; err == nil {
				err = runErr
			}
		}
	}()
	serveOn := func(run func(context.Context, net.Listener) error) (string, error) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		done := make(chan error, 1)
		stops = append(stops, done)
		go func() { done <- run(ctx, lis) }()
		return lis.Addr().String(), nil
	}
	userAddr, err := serveOn(func(ctx context.Context, lis net.Listener) error {
		return user.Run(ctx, ucfg, slog.New(slog.DiscardHandler), lis)
	})
	if err != nil {
		return "", err
	}
	scfg.UserAddr = userAddr
	supportAddr, err := serveOn(func(ctx context.Context, lis net.Listener) error {
		return support.Run(ctx, scfg, slog.New(slog.DiscardHandler), lis)
	})
	if err != nil {
		return "", err
	}

	ucc, err := grpc.NewClient(userAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer ucc.Close()
	users := userv1.NewUserServiceClient(ucc)
	if _, err := users.Register(ctx, &userv1.RegisterRequest{Email: benchEmail, Password: benchPassword, DisplayName: "Bench"}); err != nil {
		return "", fmt.Errorf("seed register: %w", err)
	}
	login, err := users.Login(ctx, &userv1.LoginRequest{Email: benchEmail, Password: benchPassword})
	if err != nil {
		return "", fmt.Errorf("seed login: %w", err)
	}
	token = login.GetAccessToken()

	scc, err := grpc.NewClient(supportAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer scc.Close()
	streamCtx, stop := context.WithCancel(auth.WithBearer(ctx, token))
	defer stop()
	stream, err := supportv1.NewSupportServiceClient(scc).Chat(streamCtx)
	if err != nil {
		return "", err
	}
	join := &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: supportRoom}}}
	if err := stream.Send(join); err != nil {
		return "", fmt.Errorf("seed join: %w", err)
	}
	for i := range supportMessages {
		text := fmt.Sprintf("Message %d: my order arrived with a cracked lid; could you send a replacement?", i+1)
		if err := stream.Send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: text}}}); err != nil {
			return "", fmt.Errorf("seed post: %w", err)
		}
	}
	// Joined, then every message back: all are stored.
	for n := 0; n < supportMessages; {
		resp, err := stream.Recv()
		if err != nil {
			return "", fmt.Errorf("seed chat: %w", err)
		}
		if resp.GetMessage() != nil {
			n++
		}
	}
	return token, nil
}
