// Package eventstest serves event functions in tests through the real
// functions-framework-go server, as Cloud Run runs them. The framework
// keeps one global registry and its server cannot be stopped, so a test
// binary gets one framework server, started on first use, with one
// dispatching function; each test gets its own Pub/Sub project id, and
// deliveries are routed to the test's function by the project in the push
// path (/projects/P/topics/T).
package eventstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// Function is an event function (events.Function).
type Function = http.HandlerFunc

var (
	startOnce sync.Once
	baseURL   string
	startErr  error
	routes    sync.Map // project → Function
	projects  atomic.Int64
)

// Serve routes pushes for a new project id to fn and returns the framework
// server's base URL and the project id to provision topics under.
func Serve(t testing.TB, fn Function) (url, project string) {
	t.Helper()
	startOnce.Do(start)
	if startErr != nil {
		t.Fatalf("start functions framework: %v", startErr)
	}
	project = fmt.Sprintf("test-%d", projects.Add(1))
	routes.Store(project, fn)
	t.Cleanup(func() { routes.Delete(project) })
	return baseURL, project
}

func start() {
	err := funcframework.RegisterHTTPFunctionContext(context.Background(), "/", dispatch)
	if err != nil {
		startErr = err
		return
	}
	// The framework listens by itself: find a free port, release it, and
	// hand it over (a race with another process on loopback is unlikely).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		startErr = err
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	go func() { _ = funcframework.StartHostPort("127.0.0.1", strconv.Itoa(port)) }()
	baseURL = "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(baseURL + "/healthz-probe")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	startErr = fmt.Errorf("functions framework did not answer on %s", baseURL)
}

// dispatch finds the test's function by the project in the push path,
// /projects/P/topics/T.
func dispatch(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, "/projects/")
	project, _, _ := strings.Cut(rest, "/")
	fn, ok := routes.Load(project)
	if !ok {
		http.Error(w, "eventstest: no function for "+r.URL.Path, http.StatusNotFound)
		return
	}
	fn.(Function)(w, r)
}
