package config_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/shopfn/shopfn/shared/config"
)

type Common struct {
	Port  int           `envconfig:"PORT" default:"8080"`
	Grace time.Duration `envconfig:"TEST_GRACE" default:"8s"`
}

type spec struct {
	Common
	Key     string   `envconfig:"TEST_KEY" secret:"true"`
	Unset   string   `envconfig:"TEST_UNSET_SECRET" secret:"true"`
	Admins  []string `envconfig:"TEST_ADMINS"`
	DataDir string   `envconfig:"TEST_DATA_DIR" default:".data"`
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	t.Setenv("PORT", "9001")
	t.Setenv("TEST_KEY", "s3cr3t")
	t.Setenv("TEST_ADMINS", "a@x.io,b@x.io")
	var s spec
	if err := config.Load(&s); err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if s.Port != 9001 || s.Grace != 8*time.Second || s.DataDir != ".data" || s.Key != "s3cr3t" || len(s.Admins) != 2 {
		t.Errorf("Load() = %+v, want PORT=9001, grace 8s, data dir .data, key set, 2 admins", s)
	}
}

func TestLoadRejectsBadValue(t *testing.T) {
	t.Setenv("PORT", "eighty")
	var s spec
	if err := config.Load(&s); err == nil {
		t.Fatalf("Load() with PORT=eighty = nil error, want one")
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	s := spec{Common: Common{Port: 1}, Key: "s3cr3t", DataDir: "d"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", config.LogValue(&s))
	if bytes.Contains(buf.Bytes(), []byte("s3cr3t")) {
		t.Fatalf("log %s contains the secret", buf.String())
	}
	var got struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"PORT": 1.0, "TEST_KEY": "***", "TEST_UNSET_SECRET": "", "TEST_DATA_DIR": "d"}
	for k, v := range want {
		if got.Config[k] != v {
			t.Errorf("logged %s = %v, want %v (all: %v)", k, got.Config[k], v, got.Config)
		}
	}
}
