package user_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shopfn/shopfn/functions/user"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/servetest"
)

type env struct {
	client userv1.UserServiceClient
	dir    string
	cfg    user.Config
}

// start runs the user service on a loopback port with a fresh data dir.
func start(t testing.TB, mutate func(*user.Config)) *env {
	t.Helper()
	var cfg user.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.AdminEmails = []string{"boss@shop.test"}
	if mutate != nil {
		mutate(&cfg)
	}
	addr, _ := servetest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return user.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
	cc := servetest.Conn(t, addr)
	return &env{client: userv1.NewUserServiceClient(cc), dir: cfg.DataDir, cfg: cfg}
}

// signer returns a signer with the service's development key, for minting
// tokens the service accepts (expired ones, service ones).
func (e *env) signer(t *testing.T, ttl time.Duration) *auth.Signer {
	t.Helper()
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewSigner(keys.Private(), e.cfg.Issuer, e.cfg.Audience, ttl)
}

func (e *env) register(t testing.TB, email, name string) *userv1.User {
	t.Helper()
	got, err := e.client.Register(context.Background(), &userv1.RegisterRequest{Email: email, Password: "correct horse battery", DisplayName: name})
	if err != nil {
		t.Fatalf("Register(%s) = %v", email, err)
	}
	return got.GetUser()
}

func (e *env) login(t testing.TB, email string) context.Context {
	t.Helper()
	got, err := e.client.Login(context.Background(), &userv1.LoginRequest{Email: email, Password: "correct horse battery"})
	if err != nil {
		t.Fatalf("Login(%s) = %v", email, err)
	}
	return auth.WithBearer(context.Background(), got.GetAccessToken())
}

func (e *env) rows(t *testing.T) int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "user.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := user.Policy().Uncovered(&userv1.UserService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

func TestRegisterLoginGet(t *testing.T) {
	e := start(t, nil)
	u := e.register(t, "  Ann@Example.COM ", "Ann")
	if u.GetEmail() != "ann@example.com" || u.GetRole() != userv1.Role_ROLE_CUSTOMER || u.GetId() == "" {
		t.Fatalf("Register = %v, want normalised email, customer role, an id", u)
	}
	ctx := e.login(t, "ANN@example.com")
	got, err := e.client.GetUser(ctx, &userv1.GetUserRequest{UserId: u.GetId()})
	if err != nil || got.GetUser().GetDisplayName() != "Ann" {
		t.Fatalf("GetUser(self) = %v, %v", got, err)
	}
}

func TestDuplicateEmail(t *testing.T) {
	e := start(t, nil)
	e.register(t, "ann@example.com", "Ann")
	_, err := e.client.Register(context.Background(), &userv1.RegisterRequest{Email: "ANN@example.com", Password: "another password!", DisplayName: "Impostor"})
	servetest.WantErr(t, err, codes.AlreadyExists, "EMAIL_TAKEN")
	if n := e.rows(t); n != 1 {
		t.Errorf("users after a duplicate = %d, want 1", n)
	}
	e.login(t, "ann@example.com") // the first password still works
}

func TestConcurrentRegistrationOfOneEmail(t *testing.T) {
	e := start(t, nil)
	const n = 8
	var wg sync.WaitGroup
	codesSeen := make(chan codes.Code, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.Register(context.Background(), &userv1.RegisterRequest{Email: "race@example.com", Password: "correct horse battery", DisplayName: "R"})
			codesSeen <- status.Code(err)
		}()
	}
	wg.Wait()
	close(codesSeen)
	ok := 0
	for c := range codesSeen {
		switch c {
		case codes.OK:
			ok++
		case codes.AlreadyExists:
		default:
			t.Errorf("concurrent Register = %v, want OK or AlreadyExists", c)
		}
	}
	if ok != 1 || e.rows(t) != 1 {
		t.Errorf("%d registrations succeeded and %d rows exist, want 1 and 1", ok, e.rows(t))
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := start(t, nil)
	e.register(t, "ann@example.com", "Ann")
	_, wrongPassword := e.client.Login(context.Background(), &userv1.LoginRequest{Email: "ann@example.com", Password: "wrong password"})
	_, unknownEmail := e.client.Login(context.Background(), &userv1.LoginRequest{Email: "nobody@example.com", Password: "wrong password"})
	servetest.WantErr(t, wrongPassword, codes.Unauthenticated, "INVALID_CREDENTIALS")
	servetest.WantErr(t, unknownEmail, codes.Unauthenticated, "INVALID_CREDENTIALS")
	if wrongPassword.Error() != unknownEmail.Error() {
		t.Errorf("wrong password %q and unknown email %q differ", wrongPassword, unknownEmail)
	}
}

func TestLoginThrottledPerEmail(t *testing.T) {
	e := start(t, nil)
	e.register(t, "ann@example.com", "Ann")
	var err error
	for range e.cfg.PerEmailBurst + 1 {
		_, err = e.client.Login(context.Background(), &userv1.LoginRequest{Email: "ann@example.com", Password: "guess guess"})
	}
	servetest.WantErr(t, err, codes.ResourceExhausted, "LOGIN_THROTTLED")
	// Another account from the same client is not throttled by ann's limit.
	e.register(t, "bob@example.com", "Bob")
	e.login(t, "bob@example.com")
}

func TestLoginThrottledPerClient(t *testing.T) {
	e := start(t, func(c *user.Config) { c.PerClientBurst = 3 })
	var err error
	for i := range 4 {
		_, err = e.client.Login(context.Background(), &userv1.LoginRequest{Email: "user" + string(rune('a'+i)) + "@example.com", Password: "guess guess"})
	}
	servetest.WantErr(t, err, codes.ResourceExhausted, "LOGIN_THROTTLED")
}

func TestGetUserAccess(t *testing.T) {
	e := start(t, nil)
	ann := e.register(t, "ann@example.com", "Ann")
	bob := e.register(t, "bob@example.com", "Bob")
	boss := e.register(t, "boss@shop.test", "Boss")
	if boss.GetRole() != userv1.Role_ROLE_ADMIN {
		t.Fatalf("configured admin email registered as %v", boss.GetRole())
	}

	// A customer reading another user gets NotFound: ids cannot be probed.
	_, err := e.client.GetUser(e.login(t, "ann@example.com"), &userv1.GetUserRequest{UserId: bob.GetId()})
	servetest.WantErr(t, err, codes.NotFound, "USER_NOT_FOUND")
	_, err = e.client.GetUser(e.login(t, "ann@example.com"), &userv1.GetUserRequest{UserId: "usr_missing"})
	servetest.WantErr(t, err, codes.NotFound, "USER_NOT_FOUND")

	if _, err := e.client.GetUser(e.login(t, "boss@shop.test"), &userv1.GetUserRequest{UserId: ann.GetId()}); err != nil {
		t.Errorf("admin GetUser(ann) = %v", err)
	}
	svc, _, _ := e.signer(t, time.Hour).Issue(auth.Principal{Subject: "order", Role: auth.RoleService})
	if _, err := e.client.GetUser(auth.WithBearer(context.Background(), svc), &userv1.GetUserRequest{UserId: ann.GetId()}); err != nil {
		t.Errorf("service GetUser(ann) = %v", err)
	}
}

func TestBadTokens(t *testing.T) {
	e := start(t, nil)
	ann := e.register(t, "ann@example.com", "Ann")
	expired, _, _ := e.signer(t, -time.Hour).Issue(auth.Principal{Subject: ann.GetId(), Role: auth.RoleCustomer})
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	wrongIssuer, _, _ := auth.NewSigner(keys.Private(), "evil", e.cfg.Audience, time.Hour).Issue(auth.Principal{Subject: ann.GetId(), Role: auth.RoleAdmin})
	tests := []struct {
		name   string
		ctx    context.Context
		reason string
	}{
		{"no token", context.Background(), "TOKEN_MISSING"},
		{"garbage", auth.WithBearer(context.Background(), "abc.def.ghi"), "TOKEN_INVALID"},
		{"expired", auth.WithBearer(context.Background(), expired), "TOKEN_EXPIRED"},
		{"wrong issuer", auth.WithBearer(context.Background(), wrongIssuer), "TOKEN_INVALID"},
		{"alg none", auth.WithBearer(context.Background(), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJzaG9wZm4iLCJzdWIiOiJ1c3JfMSIsImF1ZCI6WyJzaG9wZm4iXSwiZXhwIjo0MTAyNDQ0ODAwLCJyb2xlIjoiYWRtaW4ifQ."), "TOKEN_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.GetUser(tt.ctx, &userv1.GetUserRequest{UserId: ann.GetId()})
			servetest.WantErr(t, err, codes.Unauthenticated, tt.reason)
		})
	}
}

func TestUpdateProfile(t *testing.T) {
	e := start(t, nil)
	ann := e.register(t, "ann@example.com", "Ann")
	ctx := e.login(t, "ann@example.com")
	addr := &commonv1.Address{Name: "Zoë Ñandú", Line1: "1 Rue de la Paix", City: "Paris", PostalCode: "75002", CountryCode: "FR"}

	got, err := e.client.UpdateProfile(ctx, &userv1.UpdateProfileRequest{
		UserId: ann.GetId(), DisplayName: "Annie", DefaultAddress: addr,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "default_address"}},
	})
	if err != nil || got.GetUser().GetDisplayName() != "Annie" || got.GetUser().GetDefaultAddress().GetName() != "Zoë Ñandú" {
		t.Fatalf("UpdateProfile = %v, %v", got, err)
	}

	// Only masked fields change.
	got, err = e.client.UpdateProfile(ctx, &userv1.UpdateProfileRequest{
		UserId: ann.GetId(), DisplayName: "ignored", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"default_address"}},
	})
	if err != nil || got.GetUser().GetDisplayName() != "Annie" || got.GetUser().GetDefaultAddress() != nil {
		t.Fatalf("UpdateProfile(clear address) = %v, %v; want name kept and address cleared", got, err)
	}

	bad := []struct {
		name  string
		req   *userv1.UpdateProfileRequest
		field string
	}{
		{"no mask", &userv1.UpdateProfileRequest{UserId: ann.GetId()}, "update_mask"},
		{"empty mask", &userv1.UpdateProfileRequest{UserId: ann.GetId(), UpdateMask: &fieldmaskpb.FieldMask{}}, "update_mask"},
		{"read-only path", &userv1.UpdateProfileRequest{UserId: ann.GetId(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}}}, "update_mask"},
		{"empty name", &userv1.UpdateProfileRequest{UserId: ann.GetId(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}, "display_name"},
		{"bad country", &userv1.UpdateProfileRequest{UserId: ann.GetId(), DefaultAddress: &commonv1.Address{Name: "A", Line1: "B", City: "C", CountryCode: "France"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"default_address"}}}, "default_address.country_code"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.UpdateProfile(ctx, tt.req)
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if v := apperr.FieldViolations(err); len(v) == 0 || v[0].Field != tt.field {
				t.Errorf("violations = %v, want %s", v, tt.field)
			}
		})
	}
	after, err := e.client.GetUser(ctx, &userv1.GetUserRequest{UserId: ann.GetId()})
	if err != nil || after.GetUser().GetDisplayName() != "Annie" || after.GetUser().GetDefaultAddress() != nil {
		t.Errorf("after rejected updates GetUser = %v, %v; want unchanged", after, err)
	}

	bob := e.register(t, "bob@example.com", "Bob")
	_, err = e.client.UpdateProfile(ctx, &userv1.UpdateProfileRequest{UserId: bob.GetId(), DisplayName: "pwned", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	servetest.WantErr(t, err, codes.NotFound, "USER_NOT_FOUND")
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *user.Config) { c.DataDir = dir })
	e.register(t, "ann@example.com", "Ann")
	e2 := start(t, func(c *user.Config) { c.DataDir = dir })
	e2.login(t, "ann@example.com")
}

func TestStopsWhenTheStoreCannotOpen(t *testing.T) {
	var cfg user.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Database = servetest.UnopenablePath(t, "user.db")
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return user.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}
