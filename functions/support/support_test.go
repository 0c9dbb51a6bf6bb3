package support_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	catalogv1 "github.com/shopfn/shopfn/proto/shopfn/catalog/v1"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	orderv1 "github.com/shopfn/shopfn/proto/shopfn/order/v1"
	supportv1 "github.com/shopfn/shopfn/proto/shopfn/support/v1"
	userv1 "github.com/shopfn/shopfn/proto/shopfn/user/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/config"
	"github.com/shopfn/shopfn/shared/servetest"
)

// testTimeout bounds every stream a test opens, so a bug shows up as a
// failure instead of a hung test binary. It is not a timing assertion.
const testTimeout = 60 * time.Second

// who is a signed-in user of the test.
type who struct {
	id, name string
	ctx      context.Context // carries the user's token
}

type env struct {
	dir     string
	addr    string // the support service
	cfg     support.Config
	support supportv1.SupportServiceClient
	orders  orderv1.OrderServiceClient
	catalog catalogv1.CatalogServiceClient
	signer  *auth.Signer

	ann, bob, agent who

	productOnce sync.Once
	productID   string
}

// start runs the support service with the real user, catalog and order
// services next to it, all on loopback ports and one fresh data dir (so
// they share the development key), and registers two customers (Ann and
// Bob) and an agent. Inventory and payment are not running: orders end
// cancelled, and still belong to their customer.
func start(t testing.TB, mutate func(*support.Config)) *env {
	t.Helper()
	e := &env{dir: t.TempDir()}
	keys, err := auth.LoadKeys(auth.Config{DevKey: true}, e.dir)
	if err != nil {
		t.Fatal(err)
	}

	var ucfg user.Config
	load(t, &ucfg)
	ucfg.DataDir, ucfg.AdminEmails = e.dir, []string{"agent@shop.test"}
	userAddr := run(t, func(ctx context.Context, lis net.Listener) error { return user.Run(ctx, ucfg, discard(), lis) })

	var ccfg catalog.Config
	load(t, &ccfg)
	ccfg.DataDir = e.dir
	catalogAddr := run(t, func(ctx context.Context, lis net.Listener) error { return catalog.Run(ctx, ccfg, discard(), lis) })

	var ocfg order.Config
	load(t, &ocfg)
	ocfg.DataDir, ocfg.CatalogAddr = e.dir, catalogAddr
	ocfg.InventoryAddr, ocfg.PaymentAddr = deadAddr(t), deadAddr(t)
	ocfg.StepTimeout = 2 * time.Second
	orderAddr := run(t, func(ctx context.Context, lis net.Listener) error { return order.Run(ctx, ocfg, discard(), lis) })

	load(t, &e.cfg)
	e.cfg.DataDir, e.cfg.OrderAddr, e.cfg.UserAddr = e.dir, orderAddr, userAddr
	e.cfg.PostsPerSecond, e.cfg.PostBurst = 1e6, 1e6 // tests of the limit set their own
	if mutate != nil {
		mutate(&e.cfg)
	}
	cfg := e.cfg
	e.addr = run(t, func(ctx context.Context, lis net.Listener) error { return support.Run(ctx, cfg, discard(), lis) })

	e.support = supportv1.NewSupportServiceClient(conn(t, e.addr))
	e.orders = orderv1.NewOrderServiceClient(conn(t, orderAddr))
	e.catalog = catalogv1.NewCatalogServiceClient(conn(t, catalogAddr))
	e.signer = auth.NewSigner(keys.Private(), e.cfg.Issuer, e.cfg.Audience, time.Hour)

	users := userv1.NewUserServiceClient(conn(t, userAddr))
	e.ann = e.register(t, users, "ann@example.com", "Ann", auth.RoleCustomer)
	e.bob = e.register(t, users, "bob@example.com", "Bob", auth.RoleCustomer)
	e.agent = e.register(t, users, "agent@shop.test", "Agent Smith", auth.RoleAdmin)
	return e
}

func load(t testing.TB, cfg any) {
	t.Helper()
	if err := config.Load(cfg); err != nil {
		t.Fatal(err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// run serves a deployable on a loopback port until the test ends.
func run(t testing.TB, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return lis.Addr().String()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func conn(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func (e *env) register(t testing.TB, users userv1.UserServiceClient, email, name string, role auth.Role) who {
	t.Helper()
	resp, err := users.Register(context.Background(), &userv1.RegisterRequest{Email: email, Password: "correct horse battery", DisplayName: name})
	if err != nil {
		t.Fatalf("Register(%s) = %v", email, err)
	}
	return e.as(t, resp.GetUser().GetId(), name, role)
}

// as mints a token for the user id.
func (e *env) as(t testing.TB, id, name string, role auth.Role) who {
	t.Helper()
	tok, _, err := e.signer.Issue(auth.Principal{Subject: id, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return who{id: id, name: name, ctx: auth.WithBearer(context.Background(), tok)}
}

// orderOf places an order as the customer and returns its id.
func (e *env) orderOf(t testing.TB, customer who) string {
	t.Helper()
	e.productOnce.Do(func() {
		resp, err := e.catalog.CreateProduct(e.agent.ctx, &catalogv1.CreateProductRequest{Product: &catalogv1.ProductDraft{
			Sku: "MUG-1", Name: "Mug", Category: "kitchen", Active: true,
			Price: &commonv1.Money{CurrencyCode: "EUR", AmountMinor: 1200},
		}})
		if err != nil {
			t.Fatalf("CreateProduct = %v", err)
		}
		e.productID = resp.GetProduct().GetId()
	})
	if e.productID == "" {
		t.Fatal("no product to order")
	}
	resp, err := e.orders.CreateOrder(customer.ctx, &orderv1.CreateOrderRequest{
		IdempotencyKey:  "key-" + customer.id + fmt.Sprint(time.Now().UnixNano()),
		Lines:           []*orderv1.LineItem{{ProductId: e.productID, Quantity: 1}},
		ShippingAddress: &commonv1.Address{Name: customer.name, Line1: "1 Main St", City: "Paris", CountryCode: "FR"},
		PaymentToken:    "tok_visa",
	})
	if err != nil {
		t.Fatalf("CreateOrder(as %s) = %v", customer.name, err)
	}
	return resp.GetOrder().GetId()
}

// messages counts the stored messages of room, reading the file directly.
func (e *env) messages(t *testing.T, room string) int {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "support.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM messages WHERE room_id = ?", room).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// owner reads the stored owner of room ("" if none or no room).
func (e *env) owner(t *testing.T, room string) string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "support.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var o string
	err = db.QueryRow("SELECT owner_id FROM rooms WHERE id = ?", room).Scan(&o)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return o
}

// participant is one open Chat stream.
type participant struct {
	t      testing.TB
	name   string
	stream grpc.BidiStreamingClient[supportv1.ChatRequest, supportv1.ChatResponse]
}

// open starts a Chat stream as u on client c.
func open(t testing.TB, c supportv1.SupportServiceClient, u who) *participant {
	t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, testTimeout)
	t.Cleanup(cancel)
	stream, err := c.Chat(ctx)
	if err != nil {
		t.Fatalf("Chat(as %s) = %v", u.name, err)
	}
	return &participant{t: t, name: u.name, stream: stream}
}

// join opens a stream as u and joins room, failing the test unless the
// server answers Joined.
func (e *env) join(t testing.TB, u who, j *supportv1.JoinRoom) (*participant, *supportv1.Joined) {
	t.Helper()
	p := open(t, e.support, u)
	joined, err := p.join(j)
	if err != nil {
		t.Fatalf("Chat join %v as %s = %v", j, u.name, err)
	}
	return p, joined
}

// join sends a JoinRoom and returns the server's Joined or the stream's
// error.
func (p *participant) join(j *supportv1.JoinRoom) (*supportv1.Joined, error) {
	p.t.Helper()
	p.send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: j}})
	resp, err := p.stream.Recv()
	if err != nil {
		return nil, err
	}
	if resp.GetJoined() == nil {
		p.t.Fatalf("%s: first response = %v, want Joined", p.name, resp)
	}
	return resp.GetJoined(), nil
}

func (p *participant) send(req *supportv1.ChatRequest) {
	p.t.Helper()
	// A send fails only when the stream has ended; the reason comes with
	// the next Recv, where the tests look for it.
	if err := p.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		p.t.Errorf("%s: Send = %v", p.name, err)
	}
}

func (p *participant) post(text, clientID string) {
	p.t.Helper()
	p.send(&supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: text, ClientMessageId: clientID}}})
}

// next returns the next message of the room.
func (p *participant) next() *supportv1.ChatMessage {
	p.t.Helper()
	resp, err := p.stream.Recv()
	if err != nil {
		p.t.Fatalf("%s: Recv = %v, want a message", p.name, err)
	}
	if resp.GetMessage() == nil {
		p.t.Fatalf("%s: Recv = %v, want a message", p.name, resp)
	}
	return resp.GetMessage()
}

// expect reads n messages and checks they are seqs from, from+1, …
func (p *participant) expect(n int, from int64) []*supportv1.ChatMessage {
	p.t.Helper()
	got := make([]*supportv1.ChatMessage, n)
	for i := range got {
		got[i] = p.next()
		if want := from + int64(i); got[i].GetSeq() != want {
			p.t.Fatalf("%s: message %d has seq %d, want %d", p.name, i, got[i].GetSeq(), want)
		}
	}
	return got
}

// end reads until the stream ends and returns how it ended, with the
// number of messages read on the way.
func (p *participant) end() (int, error) {
	p.t.Helper()
	for n := 0; ; n++ {
		if _, err := p.stream.Recv(); err != nil {
			return n, err
		}
	}
}

func (e *env) history(t *testing.T, u who, room string) []*supportv1.ChatMessage {
	t.Helper()
	var all []*supportv1.ChatMessage
	token := ""
	for {
		resp, err := e.support.History(u.ctx, &supportv1.HistoryRequest{RoomId: room, PageSize: 200, PageToken: token})
		if err != nil {
			t.Fatalf("History(%s) = %v", room, err)
		}
		all = append(all, resp.GetMessages()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all
		}
	}
}

func TestPolicyCoversEveryMethod(t *testing.T) {
	if missing := support.Policy().Uncovered(&supportv1.SupportService_ServiceDesc); len(missing) > 0 {
		t.Errorf("methods without an access policy: %v", missing)
	}
}

// TestChatInAnOrderRoom has Ann on two devices and an agent in the room of
// Ann's order: everyone sees every message, their own included, in one
// order, stored before delivery.
func TestChatInAnOrderRoom(t *testing.T) {
	e := start(t, nil)
	room := "order:" + e.orderOf(t, e.ann)

	phone, joined := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	if joined.GetRoomId() != room || joined.GetLastSeq() != 0 {
		t.Fatalf("Joined = %v, want room %s at seq 0", joined, room)
	}
	laptop, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	agent, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})

	phone.post("Where is my mug?", "c1")
	first := agent.expect(1, 1)[0]
	agent.post("Let me check, Ann.", "")
	laptop.post("It was due yesterday.", "")
	// Each participant sees the posts, its own included, as one sequence.
	seen := [][]*supportv1.ChatMessage{phone.expect(3, 1), laptop.expect(3, 1), append([]*supportv1.ChatMessage{first}, agent.expect(2, 2)...)}
	for i := range 3 {
		if seen[1][i].GetId() != seen[0][i].GetId() || seen[2][i].GetId() != seen[0][i].GetId() {
			t.Errorf("participants disagree on seq %d: %v / %v / %v", i+1, seen[0][i], seen[1][i], seen[2][i])
		}
	}
	if first.GetAuthorId() != e.ann.id || first.GetAuthorName() != "Ann" || first.GetFromAgent() ||
		first.GetText() != "Where is my mug?" || first.GetClientMessageId() != "c1" || first.GetRoomId() != room ||
		first.GetId() == "" || first.GetCreateTime() == nil {
		t.Errorf("first message = %v", first)
	}
	for _, m := range seen[0][1:] {
		agentPost := m.GetText() == "Let me check, Ann."
		if agentPost != (m.GetAuthorId() == e.agent.id) || agentPost != m.GetFromAgent() || agentPost != (m.GetAuthorName() == "Agent Smith") {
			t.Errorf("message %v: author and agent flag do not match its poster", m)
		}
	}

	// Persisted: History (and the file) hold the same three.
	hist := e.history(t, e.ann, room)
	if len(hist) != 3 || e.messages(t, room) != 3 {
		t.Fatalf("History = %d messages, store %d; want 3", len(hist), e.messages(t, room))
	}
	for i, m := range hist {
		if m.GetSeq() != int64(i+1) || m.GetId() != seen[0][i].GetId() || m.GetText() != seen[0][i].GetText() {
			t.Errorf("History[%d] = %v, want %v", i, m, seen[0][i])
		}
	}

	// Bob may neither join nor read Ann's order room.
	_, err := open(t, e.support, e.bob).join(&supportv1.JoinRoom{RoomId: room})
	servetest.WantErr(t, err, codes.PermissionDenied, "ROOM_FORBIDDEN")
	_, err = e.support.History(e.bob.ctx, &supportv1.HistoryRequest{RoomId: room})
	servetest.WantErr(t, err, codes.PermissionDenied, "ROOM_FORBIDDEN")
	if n := e.messages(t, room); n != 3 {
		t.Errorf("messages after Bob's attempts = %d, want 3", n)
	}
}

func TestRoomAccess(t *testing.T) {
	e := start(t, nil)
	annOrder := "order:" + e.orderOf(t, e.ann)
	bobOrder := "order:" + e.orderOf(t, e.bob)

	// Bob opens a ticket first: it is his.
	e.join(t, e.bob, &supportv1.JoinRoom{RoomId: "ticket:t-1"})
	if o := e.owner(t, "ticket:t-1"); o != e.bob.id {
		t.Fatalf("owner of ticket:t-1 = %q, want Bob %q", o, e.bob.id)
	}
	// An agent looks at a ticket first: it stays unclaimed.
	e.join(t, e.agent, &supportv1.JoinRoom{RoomId: "ticket:t-2"})

	svc, _, err := e.signer.Issue(auth.Principal{Subject: "invoicing", Role: auth.RoleService})
	if err != nil {
		t.Fatal(err)
	}
	service := who{id: "invoicing", name: "invoicing", ctx: auth.WithBearer(context.Background(), svc)}

	tests := []struct {
		name   string
		who    who
		room   string
		reason string // "" when allowed
	}{
		{"customer, own order", e.ann, annOrder, ""},
		{"customer, another's order", e.ann, bobOrder, "ROOM_FORBIDDEN"},
		{"customer, no such order", e.ann, "order:ord_missing", "ROOM_FORBIDDEN"},
		{"agent, any order", e.agent, bobOrder, ""},
		{"agent, unknown order", e.agent, "order:ord_missing", ""},
		{"owner, own ticket", e.bob, "ticket:t-1", ""},
		{"customer, another's ticket", e.ann, "ticket:t-1", "ROOM_FORBIDDEN"},
		{"agent, a customer's ticket", e.agent, "ticket:t-1", ""},
		{"customer, ticket first joined by an agent", e.ann, "ticket:t-2", ""},
		{"another customer, then", e.bob, "ticket:t-2", "ROOM_FORBIDDEN"},
		{"service", service, annOrder, "ROOM_FORBIDDEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := open(t, e.support, tt.who).join(&supportv1.JoinRoom{RoomId: tt.room})
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Chat join %s = %v, want joined", tt.room, err)
				}
				return
			}
			servetest.WantErr(t, err, codes.PermissionDenied, tt.reason)
		})
	}
	if o := e.owner(t, "ticket:t-1"); o != e.bob.id {
		t.Errorf("owner of ticket:t-1 after the attempts = %q, want Bob", o)
	}
	if o := e.owner(t, "ticket:t-2"); o != e.ann.id {
		t.Errorf("owner of ticket:t-2 = %q, want Ann (the first customer)", o)
	}

	// History follows the same rule, and never claims a ticket.
	historyTests := []struct {
		name   string
		who    who
		room   string
		reason string
	}{
		{"customer, own order", e.ann, annOrder, ""},
		{"customer, another's order", e.bob, annOrder, "ROOM_FORBIDDEN"},
		{"owner, own ticket", e.bob, "ticket:t-1", ""},
		{"customer, another's ticket", e.ann, "ticket:t-1", "ROOM_FORBIDDEN"},
		{"customer, unclaimed ticket", e.ann, "ticket:t-3", "ROOM_FORBIDDEN"},
		{"agent, anything", e.agent, "ticket:t-1", ""},
		{"service, anything", service, annOrder, ""},
	}
	for _, tt := range historyTests {
		t.Run("History/"+tt.name, func(t *testing.T) {
			_, err := e.support.History(tt.who.ctx, &supportv1.HistoryRequest{RoomId: tt.room})
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("History(%s) = %v, want a page", tt.room, err)
				}
				return
			}
			servetest.WantErr(t, err, codes.PermissionDenied, tt.reason)
		})
	}
	if o := e.owner(t, "ticket:t-3"); o != "" {
		t.Errorf("History claimed ticket:t-3 for %q", o)
	}

	// No token at all.
	stream, err := e.support.Chat(context.Background())
	if err == nil {
		_, err = stream.Recv()
	}
	servetest.WantErr(t, err, codes.Unauthenticated, "TOKEN_MISSING")
}

func TestHistoryReplayOnJoin(t *testing.T) {
	e := start(t, nil)
	room := "ticket:replay"
	poster, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	for i := range 60 {
		poster.post(fmt.Sprintf("message %d", i+1), "")
	}
	poster.expect(60, 1)

	// Each case posts one live message, so the next starts one seq later.
	tests := []struct {
		name    string
		history int32
		last    int64 // the room's last seq when joining
		from    int64 // the first seq replayed
	}{
		{"default", 0, 60, 11},
		{"five", 5, 61, 57},
		{"more than there is", 200, 62, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, joined := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room, History: tt.history})
			if joined.GetLastSeq() != tt.last {
				t.Errorf("Joined.last_seq = %d, want %d", joined.GetLastSeq(), tt.last)
			}
			got := p.expect(int(tt.last-tt.from+1), tt.from)
			if tt.from <= 60 && got[0].GetText() != fmt.Sprintf("message %d", tt.from) {
				t.Errorf("first replayed = %q", got[0].GetText())
			}
			// Then live.
			poster.post("live", "")
			if m := p.next(); m.GetText() != "live" || m.GetSeq() != tt.last+1 {
				t.Errorf("after the history = %v, want the live message", m)
			}
			poster.next()
		})
	}
}

// TestConcurrentPosters has five participants post 50 messages each at
// once: every one of them receives all 250, seqs 1 to 250 in order.
func TestConcurrentPosters(t *testing.T) {
	e := start(t, nil)
	room := "order:" + e.orderOf(t, e.ann)
	const posters, each = 5, 50
	ps := make([]*participant, posters)
	for i := range ps {
		u := e.ann
		if i%2 == 1 {
			u = e.agent
		}
		ps[i], _ = e.join(t, u, &supportv1.JoinRoom{RoomId: room})
	}
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			for j := range each {
				p.post(fmt.Sprintf("p%d-%d", i, j), "")
			}
		})
	}
	got := make([][]*supportv1.ChatMessage, posters)
	var rg sync.WaitGroup
	for i, p := range ps {
		rg.Go(func() {
			for n := range posters * each {
				resp, err := p.stream.Recv()
				if err != nil || resp.GetMessage() == nil {
					t.Errorf("participant %d: Recv %d = %v, %v", i, n, resp, err)
					return
				}
				got[i] = append(got[i], resp.GetMessage())
			}
		})
	}
	wg.Wait()
	rg.Wait()
	for i := range got {
		if len(got[i]) != posters*each {
			t.Fatalf("participant %d received %d messages, want %d", i, len(got[i]), posters*each)
		}
		next := make([]int, posters) // each poster's messages arrive in the order posted
		for j, m := range got[i] {
			if m.GetSeq() != int64(j+1) {
				t.Fatalf("participant %d: message %d has seq %d, want %d", i, j, m.GetSeq(), j+1)
			}
			if m.GetId() != got[0][j].GetId() {
				t.Fatalf("participant %d: seq %d is %s, participant 0 has %s", i, j+1, m.GetId(), got[0][j].GetId())
			}
			var pi, pj int
			if _, err := fmt.Sscanf(m.GetText(), "p%d-%d", &pi, &pj); err != nil || pj != next[pi] {
				t.Fatalf("participant %d: seq %d is %q, want poster %d's message %d", i, j+1, m.GetText(), pi, next[pi])
			}
			next[pi]++
		}
	}
	if n := e.messages(t, room); n != posters*each {
		t.Errorf("stored %d messages, want %d", n, posters*each)
	}
}

// TestSlowConsumer has a participant that never reads: it is disconnected
// with SLOW_CONSUMER while the others receive everything.
func TestSlowConsumer(t *testing.T) {
	e := start(t, func(c *support.Config) { c.OutgoingBuffer = 8 })
	room := "order:" + e.orderOf(t, e.ann)
	// The slow client's connection keeps HTTP/2's smallest window (64 KiB,
	// no growth), so what the transport holds for it is small and known.
	slowClient := supportv1.NewSupportServiceClient(conn(t, e.addr, grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535)))
	slow := open(t, slowClient, e.ann)
	if _, err := slow.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	poster, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})
	reader, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})

	outpaceSlow(t, poster, reader, slow)
}

// outpaceSlow posts 200 messages of 2,000 characters, 400 KB: far more
// than the slow client's window and the server's write quota for the
// stream (64 KiB each) and its buffer together. poster and reader read each
// message before the next is posted, so they are never behind; slow never
// reads, and must be dropped with SLOW_CONSUMER while the room goes on.
func outpaceSlow(t *testing.T, poster, reader, slow *participant) {
	t.Helper()
	const n = 200
	text := strings.Repeat("x", 2000)
	for i := range n {
		poster.post(text, "")
		poster.expect(1, int64(i+1))
		reader.expect(1, int64(i+1))
	}

	got, err := slow.end()
	servetest.WantErr(t, err, codes.ResourceExhausted, "SLOW_CONSUMER")
	if got >= n {
		t.Errorf("the slow participant received all %d messages before being dropped", got)
	}
	// The room goes on.
	poster.post("still here", "")
	if m := reader.next(); m.GetText() != "still here" || m.GetSeq() != n+1 {
		t.Errorf("after the drop = %v, want seq %d", m, n+1)
	}
}

func TestPostBeforeJoin(t *testing.T) {
	e := start(t, nil)
	p := open(t, e.support, e.ann)
	p.post("hello?", "")
	_, err := p.end()
	servetest.WantErr(t, err, codes.InvalidArgument, "NOT_JOINED")
}

// TestBadMessages sends each invalid message after a valid post: the
// stream ends with InvalidArgument and the store keeps only the valid
// post.
func TestBadMessages(t *testing.T) {
	e := start(t, nil)
	tests := []struct {
		name  string
		req   *supportv1.ChatRequest
		field string
	}{
		{"empty text", &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{}}}, "post.text"},
		{"blank text", &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: " \n\t "}}}, "post.text"},
		{"text too long", &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: strings.Repeat("é", 2001)}}}, "post.text"},
		{"client id too long", &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Post{Post: &supportv1.PostMessage{Text: "hi", ClientMessageId: strings.Repeat("c", 65)}}}, "post.client_message_id"},
		{"second join", &supportv1.ChatRequest{Kind: &supportv1.ChatRequest_Join{Join: &supportv1.JoinRoom{RoomId: "ticket:other"}}}, "join"},
		{"nothing", &supportv1.ChatRequest{}, "kind"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room := fmt.Sprintf("ticket:bad-%d", i)
			p, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
			p.post("valid", "")
			p.expect(1, 1)
			p.send(tt.req)
			_, err := p.end()
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if v := apperr.FieldViolations(err); len(v) == 0 || v[0].Field != tt.field {
				t.Errorf("violations = %v, want %s", v, tt.field)
			}
			if n := e.messages(t, room); n != 1 {
				t.Errorf("stored messages = %d, want 1", n)
			}
		})
	}

	joins := []struct {
		name  string
		join  *supportv1.JoinRoom
		field string
	}{
		{"no room", &supportv1.JoinRoom{}, "join.room_id"},
		{"unknown kind", &supportv1.JoinRoom{RoomId: "chat:1"}, "join.room_id"},
		{"bad characters", &supportv1.JoinRoom{RoomId: "ticket:a/b"}, "join.room_id"},
		{"history too long", &supportv1.JoinRoom{RoomId: "ticket:x", History: 201}, "join.history"},
		{"negative seq", &supportv1.JoinRoom{RoomId: "ticket:x", AfterSeq: -1}, "join.after_seq"},
	}
	for _, tt := range joins {
		t.Run("join/"+tt.name, func(t *testing.T) {
			_, err := open(t, e.support, e.ann).join(tt.join)
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if v := apperr.FieldViolations(err); len(v) == 0 || v[0].Field != tt.field {
				t.Errorf("violations = %v, want %s", v, tt.field)
			}
		})
	}
	if o := e.owner(t, "ticket:x"); o != "" {
		t.Errorf("a refused join claimed ticket:x for %q", o)
	}
}

func TestRateLimit(t *testing.T) {
	e := start(t, func(c *support.Config) { c.PostsPerSecond, c.PostBurst = 0.001, 3 })
	room := "ticket:fast"
	p, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	for i := range 4 {
		p.post(fmt.Sprint("message ", i), "")
	}
	got, err := p.end()
	servetest.WantErr(t, err, codes.ResourceExhausted, "RATE_LIMITED")
	// The stream ends at the refused post: what it had not delivered yet
	// is for the rejoin to deliver.
	if got > 3 || e.messages(t, room) != 3 {
		t.Errorf("received %d and stored %d messages, want at most 3 and 3", got, e.messages(t, room))
	}
	// The limit is the user's, across streams; others may still post.
	again, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room, AfterSeq: 3})
	again.post("once more", "")
	_, err = again.end()
	servetest.WantErr(t, err, codes.ResourceExhausted, "RATE_LIMITED")
	agent, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room, AfterSeq: 3})
	agent.post("Slow down, please.", "")
	if m := agent.next(); m.GetSeq() != 4 {
		t.Errorf("agent's post = %v, want seq 4", m)
	}
}

func TestIdempotentPost(t *testing.T) {
	e := start(t, nil)
	room := "ticket:idem"
	ann, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	agent, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})
	ann.post("hello", "c-1")
	ann.post("hello", "c-1") // a resend
	ann.post("again", "c-2")
	for _, p := range []*participant{ann, agent} {
		got := p.expect(2, 1)
		if got[0].GetClientMessageId() != "c-1" || got[0].GetText() != "hello" || got[1].GetText() != "again" {
			t.Errorf("%s received %v", p.name, got)
		}
	}
	agent.post("hi", "c-1") // another author's id is another post
	for _, p := range []*participant{ann, agent} {
		if m := p.next(); m.GetSeq() != 3 || m.GetAuthorId() != e.agent.id {
			t.Errorf("%s received %v, want the agent's post as seq 3", p.name, m)
		}
	}
	// A resend on a new stream, after a reconnect, is stored once too.
	re, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room, AfterSeq: 3})
	re.post("again", "c-2")
	re.post("new", "c-3")
	if m := re.next(); m.GetSeq() != 4 || m.GetText() != "new" {
		t.Errorf("after resending = %v, want seq 4 %q", m, "new")
	}
	if n := e.messages(t, room); n != 4 {
		t.Errorf("stored %d messages, want 4", n)
	}
}

func TestHistoryPaging(t *testing.T) {
	e := start(t, nil)
	room := "ticket:pages"
	p, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	const total = 230
	for i := range total {
		p.post(fmt.Sprint("m", i+1), "")
	}
	p.expect(total, 1)
	e.join(t, e.ann, &supportv1.JoinRoom{RoomId: "ticket:other"})

	sizes := []struct {
		name  string
		size  int32
		pages []int
	}{
		{"ten", 10, nil},
		{"default", 0, []int{50, 50, 50, 50, 30}},
		{"capped", 1000, []int{200, 30}},
	}
	for _, tt := range sizes {
		t.Run(tt.name, func(t *testing.T) {
			var (
				token string
				seq   int64
				pages []int
			)
			for {
				resp, err := e.support.History(e.ann.ctx, &supportv1.HistoryRequest{RoomId: room, PageSize: tt.size, PageToken: token})
				if err != nil {
					t.Fatalf("History(page %d) = %v", len(pages), err)
				}
				pages = append(pages, len(resp.GetMessages()))
				for _, m := range resp.GetMessages() {
					seq++
					if m.GetSeq() != seq || m.GetText() != fmt.Sprint("m", seq) {
						t.Fatalf("History: got %v, want seq %d", m, seq)
					}
				}
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			if seq != total {
				t.Errorf("History paged through %d messages, want %d", seq, total)
			}
			if tt.pages != nil && fmt.Sprint(pages) != fmt.Sprint(tt.pages) {
				t.Errorf("page sizes = %v, want %v", pages, tt.pages)
			}
		})
	}

	first, err := e.support.History(e.ann.ctx, &supportv1.HistoryRequest{RoomId: room, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		req  *supportv1.HistoryRequest
	}{
		{"another room's token", &supportv1.HistoryRequest{RoomId: "ticket:other", PageToken: first.GetNextPageToken()}},
		{"garbage", &supportv1.HistoryRequest{RoomId: room, PageToken: "not-a-token"}},
		{"forged seq", &supportv1.HistoryRequest{RoomId: room, PageToken: base64.RawURLEncoding.EncodeToString([]byte(`{"r":"ticket:pages","a":-1}`))}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.support.History(e.ann.ctx, tt.req)
			servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
		})
	}
	_, err = e.support.History(e.ann.ctx, &supportv1.HistoryRequest{RoomId: "lobby"})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = e.support.History(e.ann.ctx, &supportv1.HistoryRequest{RoomId: room, PageSize: -1})
	servetest.WantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
}

// TestResumeFromSeq drops a participant midway; it rejoins from the last
// seq it saw and receives the rest without a gap or a duplicate, then the
// live messages.
func TestResumeFromSeq(t *testing.T) {
	e := start(t, nil)
	room := "order:" + e.orderOf(t, e.ann)
	agent, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})
	ctx, cancel := context.WithCancel(e.ann.ctx)
	ann := open(t, e.support, who{id: e.ann.id, name: "Ann", ctx: ctx})
	if _, err := ann.join(&supportv1.JoinRoom{RoomId: room}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		agent.post(fmt.Sprint("m", i+1), "")
	}
	ann.expect(4, 1) // …and the connection drops
	cancel()
	for i := 10; i < 20; i++ {
		agent.post(fmt.Sprint("m", i+1), "")
	}
	agent.expect(20, 1)

	back, joined := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room, AfterSeq: 4, History: 1})
	if joined.GetLastSeq() != 20 {
		t.Errorf("Joined.last_seq = %d, want 20", joined.GetLastSeq())
	}
	got := back.expect(16, 5)
	if got[0].GetText() != "m5" {
		t.Errorf("first resumed = %v, want m5", got[0])
	}
	agent.post("m21", "")
	if m := back.next(); m.GetSeq() != 21 {
		t.Errorf("live after resuming = %v, want seq 21", m)
	}

	// A seq beyond the room's last cannot skip what comes next.
	ahead, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room, AfterSeq: 1000})
	agent.post("m22", "")
	if m := ahead.next(); m.GetSeq() != 22 {
		t.Errorf("after joining ahead = %v, want seq 22", m)
	}
}

// TestClientClosesSendingSide keeps receiving after CloseSend.
func TestClientClosesSendingSide(t *testing.T) {
	e := start(t, nil)
	room := "ticket:watch"
	watcher, _ := e.join(t, e.agent, &supportv1.JoinRoom{RoomId: room})
	if err := watcher.stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	ann, _ := e.join(t, e.ann, &supportv1.JoinRoom{RoomId: room})
	ann.post("anyone there?", "")
	if m := watcher.next(); m.GetText() != "anyone there?" {
		t.Errorf("watcher got %v", m)
	}
}

// TestShutdownEndsChats stops the service under an open chat: the client
// is told at once to rejoin elsewhere.
func TestShutdownEndsChats(t *testing.T) {
	e := start(t, nil)
	cfg := e.cfg
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg.DataDir = t.TempDir() // its own database…
	if err := os.Link(filepath.Join(e.dir, auth.DevKeyFile), filepath.Join(cfg.DataDir, auth.DevKeyFile)); err != nil {
		t.Fatal(err) // …and the same key
	}
	go func() { done <- support.Run(ctx, cfg, discard(), lis) }()
	c := supportv1.NewSupportServiceClient(conn(t, lis.Addr().String()))
	p := open(t, c, e.ann)
	if _, err := p.join(&supportv1.JoinRoom{RoomId: "ticket:bye"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = p.end()
	servetest.WantErr(t, err, codes.Unavailable, "SHUTTING_DOWN")
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestStopsWhenTheStoreCannotOpen(t *testing.T) {
	var cfg support.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Database = servetest.UnopenablePath(t, "support.db")
	servetest.ExpectRunFails(t, func(ctx context.Context, lis net.Listener) error {
		return support.Run(ctx, cfg, slog.New(slog.DiscardHandler), lis)
	})
}
