package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopfn/shopfn/infra"
	"github.com/shopfn/shopfn/shared/events"
	"github.com/shopfn/shopfn/shared/testenv"
)

// runDemo starts shopfn dev in dataDir, points the client at it and runs
// the demo, which must succeed; it returns the demo's output.
func runDemo(t *testing.T, dataDir string) (map[string]string, string) {
	t.Helper()
	eps := startDevIn(t, dataDir)
	for name, addr := range eps {
		if !strings.HasPrefix(addr, "http://") {
			t.Setenv("SHOPFN_"+strings.ToUpper(name)+"_ADDR", addr)
		}
	}
	out, err := shopfn(t, "", "demo", "--data-dir", dataDir, "--timeout", "60s")
	if err != nil {
		t.Fatalf("shopfn demo = %v\n%s", err, out)
	}
	for _, want := range []string{"CONFIRMED", "invoice INV-", "3 variants", "messages in order:", "The whole flow worked"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	return eps, out
}

// TestDemoEndToEnd runs the whole system as `shopfn dev` does, with the
// embedded broker and the push bridge delivering to the functions' child
// processes, and walks the demo through it. Then it delivers the order's
// event again, and some poison, straight to the invoicing function.
func TestDemoEndToEnd(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "") // the embedded broker, whatever the caller's environment
	dataDir := t.TempDir()
	eps, out := runDemo(t, dataDir)

	orderID := regexp.MustCompile(`order (ord_\w+) CONFIRMED`).FindStringSubmatch(out)
	if orderID == nil {
		t.Fatalf("no order id in the demo output:\n%s", out)
	}
	pdf := filepath.Join(dataDir, "invoices", "invoices", orderID[1]+".pdf")
	before := fileState(t, pdf)
	if before.head != "%PDF-" {
		t.Fatalf("%s is not a PDF", pdf)
	}

	topic := infra.MustLoad().Subscriptions[0].Topic
	for _, s := range infra.MustLoad().PushTo("invoicing") {
		topic = s.Topic
	}
	url := eps["invoicing"] + "/projects/" + infra.MustLoad().Project + "/topics/" + topic
	confirmed := map[string]string{
		events.AttrID: orderID[1] + "-confirmed", events.AttrType: "order.confirmed",
		events.AttrSource: "//shopfn/order", events.AttrSpecVersion: "1.0",
	}
	pushToken := token(t, dataDir, events.PushIdentity)
	tests := []struct {
		name  string
		attrs map[string]string
		data  string
	}{
		{"duplicate delivery", confirmed, `{"orderId":"` + orderID[1] + `"}`},
		{"undecodable data", confirmed, `{not json`},
		{"unknown event type", with(confirmed, events.AttrType, "order.exploded"), `{}`},
		{"no CloudEvent attributes", nil, `{"orderId":"` + orderID[1] + `"}`},
		{"unknown order", with(confirmed, events.AttrID, "ord_nope-confirmed"), `{"orderId":"ord_nope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A permanent failure is acknowledged (2xx), not retried forever.
			if code := push(t, url, pushToken, tt.attrs, tt.data); code/100 != 2 {
				t.Errorf("push %s = HTTP %d, want 2xx (acknowledged)", tt.name, code)
			}
			if after := fileState(t, pdf); after != before {
				t.Errorf("the invoice changed after %s", tt.name)
			}
		})
	}

	// Pushes are authenticated: no token, a forged one, or another
	// service's are refused, and nothing happens.
	other := token(t, dataDir, "imaging")
	for name, tc := range map[string]struct {
		token string
		want  int
	}{
		"no token":         {"", http.StatusUnauthorized},
		"forged token":     {pushToken[:len(pushToken)-4] + "AAAA", http.StatusUnauthorized},
		"another identity": {other, http.StatusForbidden},
	} {
		if code := push(t, url, tc.token, confirmed, `{"orderId":"`+orderID[1]+`"}`); code != tc.want {
			t.Errorf("push with %s = HTTP %d, want %d", name, code, tc.want)
		}
	}
	if after := fileState(t, pdf); after != before {
		t.Error("the invoice changed after refused pushes")
	}
}

// token mints a service token with the dev key of dataDir.
func token(t *testing.T, dataDir, service string) string {
	t.Helper()
	creds, err := serviceCredentials(dataDir, service)
	if err != nil {
		t.Fatal(err)
	}
	md, err := creds.GetRequestMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(md["authorization"], "Bearer ")
}

// TestDemoWithPubSubEmulator runs the same flow with the real Pub/Sub
// emulator pushing to the functions' HTTP endpoints (no bridge).
func TestDemoWithPubSubEmulator(t *testing.T) {
	host := testenv.PubSub(t)
	testenv.SetPubSubEnv(t, host)
	t.Setenv("GOOGLE_CLOUD_PROJECT", testenv.ProjectID(t))
	runDemo(t, t.TempDir())
}

func with(m map[string]string, k, v string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	c[k] = v
	return c
}

// push posts a Pub/Sub push envelope and returns the HTTP status.
func push(t *testing.T, url, token string, attrs map[string]string, data string) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"message":      map[string]any{"data": []byte(data), "attributes": attrs, "messageId": "test-" + time.Now().Format("150405.000000000")},
		"subscription": "projects/test/subscriptions/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// fileStat is what changes when a file is written again.
type fileStat struct {
	sum   [32]byte
	mtime time.Time
	head  string
}

func fileState(t *testing.T, path string) fileStat {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("invoice file: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileStat{sum: sha256.Sum256(b), mtime: fi.ModTime(), head: string(b[:min(len(b), 5)])}
}

func TestCloudRunAddrs(t *testing.T) {
	got, err := cloudRunAddrs("https://123456789012.europe-west1.run.app")
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://order-123456789012.europe-west1.run.app"; got["order"] != want {
		t.Errorf("cloudRunAddrs()[order] = %q, want %q", got["order"], want)
	}
	for _, bad := range []string{"http://1.europe-west1.run.app", "europe-west1.run.app", "https://1.run.app/path", "https://"} {
		if _, err := cloudRunAddrs(bad); err == nil {
			t.Errorf("cloudRunAddrs(%q) = nil error", bad)
		}
	}
}
