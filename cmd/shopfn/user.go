package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/dial"
)

// withClient dials addr, calls fn with a client made by newClient, and
// closes the connection.
func withClient[C any](addr string, o dial.Options, newClient func(grpc.ClientConnInterface) C, fn func(C) error) error {
	cc, err := dial.Dial(addr, o)
	if err != nil {
		return err
	}
	defer cc.Close()
	return fn(newClient(cc))
}

// withUser calls fn with a user service client. Login, GetUser and
// UpdateProfile are safe to retry; Register is not.
func withUser(addr string, fn func(userv1.UserServiceClient) error) error {
	return withClient(addr, dial.Options{Idempotent: []string{
		userv1.UserService_Login_FullMethodName,
		userv1.UserService_GetUser_FullMethodName,
		userv1.UserService_UpdateProfile_FullMethodName,
	}}, userv1.NewUserServiceClient, fn)
}

func newUserCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Register, log in and manage accounts",
	}
	cmd.PersistentFlags().StringVar(&addr, "addr", envOr("SHOPFN_USER_ADDR", defaultAddr("user")),
		"user service address: host:port (plaintext) or https://host (TLS) [$SHOPFN_USER_ADDR]")

	var email, password, name string
	register := &cobra.Command{
		Use:   "register",
		Short: "Create an account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, password, true)
			if err != nil {
				return err
			}
			return withUser(addr, func(c userv1.UserServiceClient) error {
				resp, err := c.Register(cmd.Context(), &userv1.RegisterRequest{Email: email, Password: pw, DisplayName: name})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetUser())
			})
		},
	}
	register.Flags().StringVar(&email, "email", "", "email address (required)")
	register.Flags().StringVar(&name, "name", "", "display name (required)")
	register.Flags().StringVar(&password, "password", "", "password (default: $SHOPFN_PASSWORD, else prompted)")
	register.MarkFlagRequired("email")
	register.MarkFlagRequired("name")

	login := &cobra.Command{
		Use:   "login",
		Short: "Log in and remember the access token for later commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd, password, false)
			if err != nil {
				return err
			}
			var resp *userv1.LoginResponse
			err = withUser(addr, func(c userv1.UserServiceClient) (err error) {
				resp, err = c.Login(cmd.Context(), &userv1.LoginRequest{Email: email, Password: pw})
				return err
			})
			if err != nil {
				return err
			}
			path, err := saveSession(session{
				AccessToken: resp.GetAccessToken(), ExpireTime: resp.GetExpireTime().AsTime(),
				UserID: resp.GetUser().GetId(), Email: resp.GetUser().GetEmail(), Addr: addr,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "logged in as %s (%s) until %s; token saved in %s\n",
				resp.GetUser().GetEmail(), resp.GetUser().GetId(), resp.GetExpireTime().AsTime().Local().Format("15:04:05"), path)
			return printProto(cmd.OutOrStdout(), resp.GetUser())
		},
	}
	login.Flags().StringVar(&email, "email", "", "email address (required)")
	login.Flags().StringVar(&password, "password", "", "password (default: $SHOPFN_PASSWORD, else prompted)")
	login.MarkFlagRequired("email")

	get := &cobra.Command{
		Use:   "get [USER_ID]",
		Short: "Show an account (default: the logged-in user)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, s, err := withSession(cmd.Context(), addr)
			if err != nil {
				return err
			}
			id := s.UserID
			if len(args) == 1 {
				id = args[0]
			}
			return withUser(addr, func(c userv1.UserServiceClient) error {
				resp, err := c.GetUser(ctx, &userv1.GetUserRequest{UserId: id})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetUser())
			})
		},
	}

	update := &cobra.Command{
		Use:   "update",
		Short: "Change the logged-in user's display name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, s, err := withSession(cmd.Context(), addr)
			if err != nil {
				return err
			}
			return withUser(addr, func(c userv1.UserServiceClient) error {
				resp, err := c.UpdateProfile(ctx, &userv1.UpdateProfileRequest{
					UserId: s.UserID, DisplayName: name,
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
				})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), resp.GetUser())
			})
		},
	}
	update.Flags().StringVar(&name, "name", "", "new display name (required)")
	update.MarkFlagRequired("name")

	cmd.AddCommand(register, login, get, update)
	return cmd
}

// withSession returns ctx carrying the saved access token.
func withSession(ctx context.Context, addr string) (context.Context, session, error) {
	s, err := loadSession(addr)
	if err != nil {
		return ctx, s, err
	}
	return auth.WithBearer(ctx, s.AccessToken), s, nil
}

// readPassword returns the --password flag, else $SHOPFN_PASSWORD, else
// asks on the terminal (twice when choosing one), else reads a line from
// standard input.
func readPassword(cmd *cobra.Command, flag string, confirm bool) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv("SHOPFN_PASSWORD"); env != "" {
		return env, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := ask("Password: ")
	if err != nil || !confirm {
		return pw, err
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}

// printProto writes m as indented protobuf JSON.
func printProto(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose; re-indent for stable,
	// readable output.
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}

// devAdminPassword is the password demo and load give the admin account
// when neither --admin-password nor $SHOPFN_ADMIN_PASSWORD says otherwise,
// so that both work on one shopfn dev whichever ran first. It is for a
// local data dir only: on a deployment, set a real one.
const devAdminPassword = "shopfn-dev-admin-password"

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
