package function

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Draining refuses new deliveries with 503 at once and waits for the ones
// running; past the grace it gives up on them.
func TestDrain(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	d := &drainer{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	})}
	srv := httptest.NewServer(d)
	defer srv.Close()

	running := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL, "application/json", nil)
		if err != nil {
			running <- 0
			return
		}
		resp.Body.Close()
		running <- resp.StatusCode
	}()
	<-started
	drained := make(chan bool, 1)
	go func() { drained <- d.drain(10 * time.Second) }()
	for !d.draining.Load() {
		time.Sleep(time.Millisecond)
	}

	resp, err := http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a delivery while draining = %d, want 503", resp.StatusCode)
	}
	select {
	case <-drained:
		t.Fatal("drain returned with a delivery still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if ok := <-drained; !ok {
		t.Error("drain = false, want true once the running delivery finished")
	}
	if code := <-running; code != http.StatusNoContent {
		t.Errorf("the running delivery ended %d, want 204", code)
	}

	// Past the grace, drain gives up.
	stuck := &drainer{}
	stuck.inflight.Add(1)
	if stuck.drain(20 * time.Millisecond) {
		t.Error("drain with a delivery that never ends = true, want false after the grace")
	}
}
