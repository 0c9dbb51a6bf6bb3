package function_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/events/function"
	"github.com/shopfn/shopfn/shared/serve"
)

func TestGuard(t *testing.T) {
	var p serve.Platform
	if err := config.Load(&p); err != nil {
		t.Fatal(err)
	}
	p.DataDir = t.TempDir()
	d, err := serve.StartClient(context.Background(), "invoicing", p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	signer := d.Keys.NewSigner(p.Auth)
	tok := func(subject string, role auth.Role) string {
		s, _, err := signer.Issue(auth.Principal{Subject: subject, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, other, _ := ed25519.GenerateKey(nil)
	forged, _, _ := auth.NewSigner(other, p.Issuer, p.Audience, time.Hour).Issue(auth.Principal{Subject: events.PushIdentity, Role: auth.RoleService})
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached++; w.WriteHeader(http.StatusNoContent) })

	tests := []struct {
		mode, token string
		want        int
	}{
		{events.PushAuthShopfn, tok(events.PushIdentity, auth.RoleService), http.StatusNoContent},
		{events.PushAuthShopfn, "", http.StatusUnauthorized},
		{events.PushAuthShopfn, forged, http.StatusUnauthorized},
		{events.PushAuthShopfn, tok("imaging", auth.RoleService), http.StatusForbidden},
		{events.PushAuthShopfn, tok(events.PushIdentity, auth.RoleAdmin), http.StatusForbidden},
		{events.PushAuthCloudRun, "", http.StatusNoContent},
		{events.PushAuthNone, "", http.StatusNoContent},
	}
	for _, tt := range tests {
		h, err := function.Guard(function.PushConfig{Mode: tt.mode}, d, next)
		if err != nil {
			t.Fatal(err)
		}
		before := reached
		r := httptest.NewRequest(http.MethodPost, "/projects/p/topics/t", nil)
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("Guard(%s) with token %.10q = %d, want %d", tt.mode, tt.token, w.Code, tt.want)
		}
		if ran := reached > before; ran != (tt.want/100 == 2) {
			t.Errorf("Guard(%s) with token %.10q reached the handler: %v", tt.mode, tt.token, ran)
		}
	}
	if _, err := function.Guard(function.PushConfig{Mode: "trust-me"}, d, next); err == nil {
		t.Error("Guard(unknown mode) = nil error")
	}
}
