package targets

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/bench/benchkit"
	"github.com/shopfn/shopfn/functions/user"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
)

// The account every user-service process starts with.
const (
	benchEmail    = "bench@example.com"
	benchPassword = "bench password 1234"
)

// userEnv keeps the per-principal rate limit on (its cost is measured) but
// high enough that one load generator is never throttled.
var userEnv = []string{"SHOPFN_RATE_LIMIT_RPS=1000000000", "SHOPFN_RATE_LIMIT_BURST=1000000000"}

// User is the user deployable, started on a data directory that already
// holds one account and its development key, as a scaled-to-zero instance
// would find its store. The probe is GetUser with a valid token: auth,
// validation, the store and the full interceptor chain. The load is the
// same call.
func User() benchkit.Target {
	var token, userID string
	return benchkit.Target{
		Name:    "user",
		Package: "./functions/user/cmd",
		Env:     userEnv,
		Prepare: func(ctx context.Context, scratch string) (func(string) ([]string, error), error) {
			var err error
			userID, token, err = seedUser(ctx, scratch)
			if err != nil {
				return nil, err
			}
			return copyData(scratch), nil
		},
		Probe: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := userv1.NewUserServiceClient(cc).GetUser(auth.WithBearer(ctx, token), &userv1.GetUserRequest{UserId: userID})
			return err
		},
		Call: func(ctx context.Context, cc *grpc.ClientConn) (func(context.Context) error, error) {
			client := userv1.NewUserServiceClient(cc)
			req := &userv1.GetUserRequest{UserId: userID}
			return func(ctx context.Context) error {
				_, err := client.GetUser(auth.WithBearer(ctx, token), req)
				return err
			}, nil
		},
	}
}

// UserNoCache is User with the account cache off: every GetUser reads
// SQLite, for measuring the store's share.
func UserNoCache() benchkit.Target {
	t := User()
	t.Name = "user-nocache"
	t.Env = append(append([]string{}, userEnv...), "SHOPFN_USER_CACHE_SIZE=0")
	return t
}

// UserLogin is the user deployable whose first call is a Login: the
// request a returning shopper makes first, including one argon2id hash.
func UserLogin() benchkit.Target {
	t := User()
	t.Name = "user-login"
	t.Probe = func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := userv1.NewUserServiceClient(cc).Login(ctx, &userv1.LoginRequest{Email: benchEmail, Password: benchPassword})
		return err
	}
	return t
}

// seedUser runs the user service in this process on scratch/data, registers
// the bench account, logs it in, and returns its id and token.
func seedUser(ctx context.Context, scratch string) (id, token string, err error) {
	var cfg user.Config
	if err := config.Load(&cfg); err != nil {
		return "", "", err
	}
	cfg.DataDir = filepath.Join(scratch, "data")
	// A week: longer than any benchmark run.
	cfg.TokenTTL = 7 * 24 * time.Hour
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- user.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis) }()
	defer func() {
		cancel()
		if runErr := <-done; err == nil {
			err = runErr
		}
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", "", err
	}
	defer cc.Close()
	c := userv1.NewUserServiceClient(cc)
	if _, err := c.Register(ctx, &userv1.RegisterRequest{Email: benchEmail, Password: benchPassword, DisplayName: "Bench"}); err != nil {
		return "", "", fmt.Errorf("seed register: %w", err)
	}
	resp, err := c.Login(ctx, &userv1.LoginRequest{Email: benchEmail, Password: benchPassword})
	if err != nil {
		return "", "", fmt.Errorf("seed login: %w", err)
	}
	return resp.GetUser().GetId(), resp.GetAccessToken(), nil
}

// copyData returns a PerRun that copies scratch/data into a fresh run
// directory and points the process at it.
func copyData(scratch string) func(string) ([]string, error) {
	return func(runDir string) ([]string, error) {
		dst := filepath.Join(runDir, "data")
		if err := copyDir(filepath.Join(scratch, "data"), dst); err != nil {
			return nil, err
		}
		return []string{"SHOPFN_DATA_DIR=" + dst}, nil
	}
}

func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
