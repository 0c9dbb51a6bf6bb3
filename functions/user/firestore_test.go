package user_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shopfn/shopfn/functions/user"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/serve"
	"github.com/shopfn/shopfn/shared/servetest"
	"github.com/shopfn/shopfn/shared/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestFirestore runs two instances on one Firestore database (the
// emulator), as Cloud Run does: what one writes, the other reads.
func TestFirestore(t *testing.T) {
	testenv.SetFirestoreEnv(t, testenv.Firestore(t))
	project, dir := testenv.ProjectID(t), t.TempDir() // one data dir: one signing key
	onFirestore := func(c *user.Config) { c.Store, c.ProjectID, c.DataDir = serve.StoreFirestore, project, dir }
	a, b := start(t, onFirestore), start(t, onFirestore)

	ann := a.register(t, "Ann@Example.com", "Ann")
	_, err := b.client.Register(context.Background(), &userv1.RegisterRequest{Email: "ann@example.com", Password: "another password!", DisplayName: "Impostor"})
	servetest.WantErr(t, err, codes.AlreadyExists, "EMAIL_TAKEN")

	ctx := b.login(t, "ann@example.com")
	if _, err := b.client.UpdateProfile(ctx, &userv1.UpdateProfileRequest{
		UserId: ann.GetId(), DisplayName: "Annie", UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	}); err != nil {
		t.Fatalf("UpdateProfile = %v", err)
	}
	got, err := a.client.GetUser(ctx, &userv1.GetUserRequest{UserId: ann.GetId()})
	if err != nil || got.GetUser().GetDisplayName() != "Annie" || got.GetUser().GetEmail() != "ann@example.com" {
		t.Errorf("GetUser on the other instance = %v, %v; want the update", got, err)
	}
	_, err = a.client.GetUser(ctx, &userv1.GetUserRequest{UserId: "usr_missing"})
	servetest.WantErr(t, err, codes.NotFound, "USER_NOT_FOUND")

	if _, err := os.Stat(filepath.Join(a.dir, "user.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("user.db in the data dir (%v), want no SQLite file with SHOPFN_STORE=firestore", err)
	}
}

func TestRefusesAnUnknownStore(t *testing.T) {
	var cfg user.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Store = t.TempDir(), "mongodb"
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return user.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}
