package gateway_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shopfn/shopfn/functions/catalog"
	"github.com/shopfn/shopfn/functions/gateway"
	"github.com/shopfn/shopfn/functions/inventory"
	"github.com/shopfn/shopfn/functions/order"
	"github.com/shopfn/shopfn/functions/payment"
	"github.com/shopfn/shopfn/functions/support"
	"github.com/shopfn/shopfn/functions/user"
	"github.com/shopfn/shopfn/shared/auth"
)

// rule is one method's google.api.http binding.
type rule struct {
	method string // full gRPC name, "/pkg.Service/Method"
	verb   string // HTTP method
	path   string // path template
	// opID is protoc-gen-openapiv2's operationId: "Service_Method".
	opID string
}

// notAPI are the proto packages whose services are not part of the shop's
// API.
var notAPI = []string{"shopfn.bench."}

// shopServices returns every shopfn service linked into this test binary
// (every service proto: the test imports each deployable).
func shopServices(t *testing.T) []protoreflect.ServiceDescriptor {
	t.Helper()
	var out []protoreflect.ServiceDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		pkg := string(fd.Package())
		if !strings.HasPrefix(pkg, "shopfn.") {
			return true
		}
		for _, skip := range notAPI {
			if strings.HasPrefix(pkg, skip) {
				return true
			}
		}
		for i := range fd.Services().Len() {
			out = append(out, fd.Services().Get(i))
		}
		return true
	})
	if len(out) < 6 {
		t.Fatalf("found %d shopfn services, want at least 6", len(out))
	}
	return out
}

// policies is every service's access policy.
func policies() auth.Policy {
	all := auth.Policy{}
	for _, p := range []auth.Policy{user.Policy(), catalog.Policy(), inventory.Policy(), payment.Policy(), order.Policy(), support.Policy()} {
		for m, a := range p {
			all[m] = a
		}
	}
	return all
}

// rules walks the descriptors and checks the rule of every method: the
// public, customer and admin methods that HTTP can carry (unary and server
// streams) must have exactly one google.api.http rule; internal methods and
// client or bidirectional streams must have none.
func rules(t *testing.T) []rule {
	t.Helper()
	access := policies()
	var out []rule
	for _, sd := range shopServices(t) {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			full := "/" + string(sd.FullName()) + "/" + string(md.Name())
			a := access[full]
			http, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			var r rule
			if http != nil {
				r = rule{method: full, opID: string(sd.Name()) + "_" + string(md.Name())}
				switch p := http.GetPattern().(type) {
				case *annotations.HttpRule_Get:
					r.verb, r.path = "GET", p.Get
				case *annotations.HttpRule_Post:
					r.verb, r.path = "POST", p.Post
				case *annotations.HttpRule_Put:
					r.verb, r.path = "PUT", p.Put
				case *annotations.HttpRule_Patch:
					r.verb, r.path = "PATCH", p.Patch
				case *annotations.HttpRule_Delete:
					r.verb, r.path = "DELETE", p.Delete
				default:
					t.Errorf("%s: unsupported HTTP rule %v", full, http)
				}
				if len(http.GetAdditionalBindings()) > 0 {
					t.Errorf("%s: additional bindings are not checked here; add them to this test", full)
				}
			}
			switch {
			case a == auth.Deny:
				t.Errorf("%s is in no service's Policy", full)
			case a == auth.Internal && http != nil:
				t.Errorf("%s is internal but has an HTTP rule: the gateway must never expose it", full)
			case md.IsStreamingClient() && http != nil:
				t.Errorf("%s is a client or bidirectional stream with an HTTP rule: keep it gRPC-only", full)
			case a != auth.Internal && !md.IsStreamingClient() && http == nil:
				t.Errorf("%s (%v) has no google.api.http rule: add one to its proto", full, a)
			case http != nil:
				out = append(out, r)
			}
		}
	}
	return out
}

func TestEveryMethodHasItsRule(t *testing.T) {
	rs := rules(t)
	if len(rs) < 17 {
		t.Errorf("%d HTTP rules, want at least 17", len(rs))
	}
	seen := map[string]string{}
	for _, r := range rs {
		if prev, ok := seen[r.verb+" "+r.path]; ok {
			t.Errorf("%s and %s share %s %s", prev, r.method, r.verb, r.path)
		}
		seen[r.verb+" "+r.path] = r.method
		if !strings.HasPrefix(r.path, "/v1/") {
			t.Errorf("%s: path %s is not under /v1/", r.method, r.path)
		}
	}
}

// openAPI is the part of the OpenAPI document the tests read.
type openAPI struct {
	Swagger string `json:"swagger"`
	Info    struct {
		Title string `json:"title"`
	} `json:"info"`
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Responses   map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"responses"`
	} `json:"paths"`
	Definitions map[string]any `json:"definitions"`
}

func TestOpenAPIListsEveryRule(t *testing.T) {
	var doc openAPI
	if err := json.Unmarshal(gateway.OpenAPI, &doc); err != nil {
		t.Fatalf("the OpenAPI document does not parse: %v", err)
	}
	if doc.Swagger != "2.0" || doc.Info.Title == "" {
		t.Fatalf("OpenAPI swagger %q title %q", doc.Swagger, doc.Info.Title)
	}
	ops := 0
	for _, byVerb := range doc.Paths {
		ops += len(byVerb)
	}
	rs := rules(t)
	if ops != len(rs) {
		t.Errorf("the OpenAPI document has %d operations, the protos %d rules: run make generate", ops, len(rs))
	}
	for _, r := range rs {
		op, ok := doc.Paths[r.path][strings.ToLower(r.verb)]
		if !ok || op.OperationID != r.opID {
			t.Errorf("OpenAPI has no %s %s with operationId %s (got %q): run make generate", r.verb, r.path, r.opID, op.OperationID)
			continue
		}
		if _, ok := op.Responses["200"]; !ok {
			t.Errorf("OpenAPI %s %s has no 200 response", r.verb, r.path)
		}
	}
	if _, ok := doc.Definitions["rpcStatus"]; !ok {
		t.Errorf("OpenAPI has no rpcStatus definition for errors")
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestGatewayRoutesEveryRule sends each rule's request to a gateway in front
// of the real services: none may miss the router (404 with
// METHOD_NOT_ALLOWED from the gateway itself), so every service with a rule
// is wired into the gateway.
func TestGatewayRoutesEveryRule(t *testing.T) {
	s := startSystem(t)
	for _, r := range rules(t) {
		path := pathParam.ReplaceAllString(r.path, "x1")
		if strings.Contains(r.path, "/rooms/") {
			path = pathParam.ReplaceAllString(r.path, "order:x1")
		}
		body := ""
		if r.verb != http.MethodGet {
			body = "{}"
		}
		rep := do(t, r.verb, s.url+path, "", body)
		if rep.reason() == "METHOD_NOT_ALLOWED" {
			t.Errorf("%s %s (%s) is not routed: %d %s", r.verb, path, r.method, rep.status, rep.raw)
		}
	}
}
