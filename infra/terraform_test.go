package infra

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// TestTerraformMatchesProviderSchema is our `terraform validate`: every
// resource block, argument and nested block of infra/terraform must exist
// in the google provider's schema (infra/schemas/google-provider.json),
// required arguments and blocks must be there, literal blocks must not
// exceed max_items, and references to resource attributes must name one
// the resource has.
func TestTerraformMatchesProviderSchema(t *testing.T) {
	var ps providerSchema
	loadJSON(t, "google-provider.json", &ps)
	files := parseTerraform(t)
	for _, path := range sortedKeys(files) {
		for _, b := range files[path].Blocks {
			if b.Type != "resource" {
				continue
			}
			where := fmt.Sprintf("%s: resource %s.%s", path, b.Labels[0], b.Labels[1])
			s := ps.Resources[b.Labels[0]]
			if s == nil {
				t.Errorf("%s: type %s is not in the provider schema", where, b.Labels[0])
				continue
			}
			for _, e := range checkTFBody(b.Body, s, &ps, true) {
				t.Errorf("%s: %s", where, e)
			}
		}
		for _, e := range checkTFReferences(files[path], &ps) {
			t.Errorf("%s: %s", path, e)
		}
	}
}

// checkTFBody checks one body against its schema level.
func checkTFBody(body *hclsyntax.Body, s *tfBlock, ps *providerSchema, top bool) []string {
	var errs []string
	for name, a := range body.Attributes {
		if top && slices.Contains(ps.TerraformMeta.Arguments, name) {
			continue
		}
		if _, ok := s.Arguments[name]; ok {
			continue
		}
		if _, ok := s.Attributes[name]; ok {
			errs = append(errs, fmt.Sprintf("line %d: %s is computed-only and cannot be set", a.SrcRange.Start.Line, name))
			continue
		}
		errs = append(errs, fmt.Sprintf("line %d: unsupported argument %q", a.SrcRange.Start.Line, name))
	}
	present, literal := map[string]bool{}, map[string]int{}
	for _, b := range body.Blocks {
		name, content, dynamic := b.Type, b.Body, false
		if top && slices.Contains([]string{"lifecycle", "provisioner", "connection"}, name) {
			continue
		}
		if name == "dynamic" {
			name, content, dynamic = b.Labels[0], nil, true
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					content = c.Body
				}
			}
			for a := range b.Body.Attributes {
				if !slices.Contains([]string{"for_each", "iterator", "labels"}, a) {
					errs = append(errs, fmt.Sprintf("line %d: dynamic %q: unsupported argument %q", b.TypeRange.Start.Line, name, a))
				}
			}
			if content == nil {
				errs = append(errs, fmt.Sprintf("line %d: dynamic %q has no content block", b.TypeRange.Start.Line, name))
				continue
			}
		}
		ns := s.Blocks[name]
		if ns == nil {
			errs = append(errs, fmt.Sprintf("line %d: unsupported block %q", b.TypeRange.Start.Line, name))
			continue
		}
		present[name] = true
		if !dynamic {
			literal[name]++
		}
		for _, e := range checkTFBody(content, &ns.tfBlock, ps, false) {
			errs = append(errs, name+": "+e)
		}
	}
	for name, a := range s.Arguments {
		if _, ok := body.Attributes[name]; a.Required && !ok {
			errs = append(errs, fmt.Sprintf("missing required argument %q", name))
		}
	}
	for name, ns := range s.Blocks {
		if ns.Required && !present[name] {
			errs = append(errs, fmt.Sprintf("missing required block %q", name))
		}
		if ns.MaxItems != nil && literal[name] > *ns.MaxItems {
			errs = append(errs, fmt.Sprintf("%d %q blocks, at most %d allowed", literal[name], name, *ns.MaxItems))
		}
	}
	return errs
}

// checkTFReferences checks every reference google_x.name[...].attr in a
// file: attr must be an argument, attribute or block of google_x.
func checkTFReferences(body *hclsyntax.Body, ps *providerSchema) []string {
	var errs []string
	check := func(typ string, attr string, rng hcl.Range) {
		s := ps.Resources[typ]
		if s == nil {
			return
		}
		_, arg := s.Arguments[attr]
		_, at := s.Attributes[attr]
		_, blk := s.Blocks[attr]
		if !arg && !at && !blk {
			errs = append(errs, fmt.Sprintf("line %d: %s has no attribute %q", rng.Start.Line, typ, attr))
		}
	}
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.ScopeTraversalExpr:
			// google_x.name.attr (a resource without for_each or count).
			tr := e.Traversal
			if len(tr) >= 3 {
				if a, ok := tr[2].(hcl.TraverseAttr); ok {
					check(tr.RootName(), a.Name, e.SrcRange)
				}
			}
		case *hclsyntax.RelativeTraversalExpr:
			// google_x.name[key].attr
			idx, ok := e.Source.(*hclsyntax.IndexExpr)
			if !ok {
				return nil
			}
			col, ok := idx.Collection.(*hclsyntax.ScopeTraversalExpr)
			if !ok || len(col.Traversal) != 2 || len(e.Traversal) == 0 {
				return nil
			}
			if a, ok := e.Traversal[0].(hcl.TraverseAttr); ok {
				check(col.Traversal.RootName(), a.Name, e.SrcRange)
			}
		}
		return nil
	})
	return errs
}

// testVars are the variables of the test deployment (the rest default).
func testVars() map[string]cty.Value {
	return map[string]cty.Value{
		"project_id":      cty.StringVal(testProject),
		"jwt_public_keys": cty.StringVal(testPublicKeys),
	}
}

func mustStack(t *testing.T) *Stack {
	t.Helper()
	s, err := Load()
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return s
}

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	slices.Sort(out)
	return out
}

func wantKeys(t *testing.T, what string, r *tfResource, want []string) {
	t.Helper()
	got := slices.Sorted(slices.Values(r.keys))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s.%s instances = %v, want %v (%s in stack.yaml)", r.typ, r.name, got, want, what)
	}
}

// TestTerraformFollowsStack holds infra/terraform to stack.yaml: one Cloud
// Run service per deployable with min instances 0, its probes, ports,
// limits and environment; one topic and subscription per entry, push
// subscriptions with an OIDC token for their function and a dead-letter
// policy; invokers exactly as stack.yaml says (allUsers only on public
// deployables); one Firestore database per store; the schedules.
func TestTerraformFollowsStack(t *testing.T) {
	s := mustStack(t)
	m := loadTerraform(t, testVars())
	p := cloudRun(s)

	svc := m.resource(t, "google_cloud_run_v2_service", "deployable")
	wantKeys(t, "deployables", svc, names(s.Deployables, func(d Deployable) string { return d.Name }))
	insts := m.instances(t, svc)
	for _, d := range s.Deployables {
		b := insts[d.Name]
		if b == nil {
			continue
		}
		wantIngress := map[string]string{IngressPublic: "INGRESS_TRAFFIC_ALL", IngressInternal: "INGRESS_TRAFFIC_INTERNAL_ONLY"}[d.Ingress]
		tpl := b.block("template")
		scaling := tpl.block("scaling")
		c := tpl.block("containers")
		wantPort := portName[d.Kind]
		dialsInternal := slices.ContainsFunc(d.Dials(), func(n string) bool { x, _ := s.Deployable(n); return x.Ingress == IngressInternal })
		checks := []struct{ what, got, want string }{
			{"name", b.str("name"), d.Name},
			{"ingress", b.str("ingress"), wantIngress},
			{"min_instance_count", scaling.str("min_instance_count"), "0"},
			{"max_instance_count", scaling.str("max_instance_count"), fmt.Sprint(d.MaxInstances)},
			{"concurrency", tpl.str("max_instance_request_concurrency"), fmt.Sprint(d.Concurrency)},
			{"timeout", tpl.str("timeout"), fmt.Sprintf("%ds", int(d.Timeout.Seconds()))},
			{"service_account", tpl.str("service_account"), "google_service_account.deployable[" + d.Name + "].email"},
			{"port name", c.block("ports").str("name"), wantPort},
			{"port", c.block("ports").str("container_port"), "8080"},
			{"vpc egress", fmt.Sprint(tpl.block("vpc_access") != nil), fmt.Sprint(dialsInternal)},
		}
		if lim := c.block("resources"); lim != nil {
			l := lim.attrs["limits"]
			checks = append(checks,
				struct{ what, got, want string }{"cpu", l.GetAttr("cpu").AsString(), d.CPU},
				struct{ what, got, want string }{"memory", l.GetAttr("memory").AsString(), d.Memory})
		} else {
			t.Errorf("service %s: no resources block", d.Name)
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("service %s: %s = %q, want %q", d.Name, ck.what, ck.got, ck.want)
			}
		}

		// Each probe has exactly one handler: grpc.health.v1 for gRPC
		// services, GET /healthz for HTTP servers, TCP for functions
		// (startup only).
		wantStartup, wantLive := map[string]string{KindGRPC: "grpc", KindHTTP: "http_get " + healthPath, KindFunction: "tcp_socket 8080"}[d.Kind], ""
		if d.Kind != KindFunction {
			wantLive = wantStartup
		}
		if got := probeHandler(c.block("startup_probe")); got != wantStartup {
			t.Errorf("service %s (%s): startup probe %q, want %q", d.Name, d.Kind, got, wantStartup)
		}
		if got := probeHandler(c.block("liveness_probe")); got != wantLive {
			t.Errorf("service %s (%s): liveness probe %q, want %q", d.Name, d.Kind, got, wantLive)
		}

		gotEnv := map[string]string{}
		secretKey := ""
		for _, e := range c.blocks["env"] {
			if ref := e.block("value_source").block("secret_key_ref"); ref != nil {
				if e.str("name") == "SHOPFN_JWT_SIGNING_KEY" {
					secretKey = ref.str("secret")
				}
				continue
			}
			gotEnv[e.str("name")] = e.str("value")
		}
		want := wantEnv(s, d, p)
		want["SHOPFN_JWT_PUBLIC_KEYS"] = testPublicKeys
		if !maps.Equal(gotEnv, want) {
			t.Errorf("service %s: env\n got %v\nwant %v", d.Name, gotEnv, want)
		}
		if wantSecret := d.NeedsSigningKey(); (secretKey != "") != wantSecret || (wantSecret && secretKey != "google_secret_manager_secret.jwt_signing_key.secret_id") {
			t.Errorf("service %s: signing key from %q, want it from the secret: %v", d.Name, secretKey, wantSecret)
		}
	}

	checkInvokers(t, s, m)
	checkSigningKey(t, s, m)
	checkPubSub(t, s, m)

	dbs := m.resource(t, "google_firestore_database", "db")
	var stores []string
	for _, d := range s.Deployables {
		if d.Database != "" {
			stores = append(stores, d.Name)
		}
	}
	wantKeys(t, "deployables with a database", dbs, stores)
	checkFirestoreIndexes(t, s, m)
	buckets := m.resource(t, "google_storage_bucket", "bucket")
	wantKeys(t, "buckets", buckets, names(s.Buckets, func(b Bucket) string { return b.Name }))
	for k, b := range m.instances(t, buckets) {
		if b.str("uniform_bucket_level_access") != "true" {
			t.Errorf("bucket %s: uniform_bucket_level_access = %q, want true", k, b.str("uniform_bucket_level_access"))
		}
	}

	sched := m.resource(t, "google_cloud_scheduler_job", "schedule")
	wantKeys(t, "schedules", sched, names(s.Schedules, func(sc Schedule) string { return sc.Name }))
	si := m.instances(t, sched)
	for _, sc := range s.Schedules {
		b := si[sc.Name]
		if b == nil {
			continue
		}
		ht := b.block("http_target")
		raw, err := base64.StdEncoding.DecodeString(ht.str("body"))
		var body struct {
			Overrides struct {
				ContainerOverrides []struct{ Args []string } `json:"containerOverrides"`
			} `json:"overrides"`
		}
		if err == nil {
			err = json.Unmarshal(raw, &body)
		}
		wantArgs := []string{"call", "--addr", p.addr(sc.Target), sc.Method}
		if err != nil || len(body.Overrides.ContainerOverrides) != 1 || !slices.Equal(body.Overrides.ContainerOverrides[0].Args, wantArgs) {
			t.Errorf("schedule %s: run body %s (%v), want args %v", sc.Name, raw, err, wantArgs)
		}
		if ht.block("oauth_token") == nil || !strings.HasSuffix(ht.str("uri"), "/jobs/google_cloud_run_v2_job.scheduler.name:run") {
			t.Errorf("schedule %s: want an OAuth-authenticated run of the scheduler job, got %q", sc.Name, ht.str("uri"))
		}
		if every := sc.Every.Duration; every < 60*60e9 && b.str("schedule") != fmt.Sprintf("*/%d * * * *", int(every.Minutes())) {
			t.Errorf("schedule %s: cron %q for every %v", sc.Name, b.str("schedule"), every)
		}
	}
}

// probeHandler describes the one handler of an evaluated probe block
// ("grpc", "http_get /healthz", "tcp_socket 8080"); "" without a probe,
// and a list of them when there are several (Cloud Run takes one).
func probeHandler(p *evBlock) string {
	if p == nil {
		return ""
	}
	var hs []string
	for _, h := range []struct{ block, arg string }{{"grpc", "port"}, {"http_get", "path"}, {"tcp_socket", "port"}} {
		for _, b := range p.blocks[h.block] {
			hs = append(hs, strings.TrimSpace(h.block+" "+b.str(h.arg)))
		}
	}
	if len(hs) != 1 {
		return fmt.Sprint(hs)
	}
	return hs[0]
}

// checkInvokers: run.invoker is allUsers on public deployables only, and on
// internal ones exactly the callers (the scheduler's identity for
// "scheduler"), the deployables that use it (reaching it with their own
// callers' tokens: the gateway) plus the push identity of a function.
func checkInvokers(t *testing.T, s *Stack, m *tfModel) {
	t.Helper()
	got := map[string][]string{}
	for _, r := range m.ofType("google_cloud_run_v2_service_iam_member") {
		for key, b := range m.instances(t, r) {
			name := b.str("name")
			svc, ok := strings.CutPrefix(name, "google_cloud_run_v2_service.deployable[")
			svc, ok2 := strings.CutSuffix(svc, "].name")
			if !ok || !ok2 || b.str("role") != "roles/run.invoker" {
				t.Errorf("%s.%s[%s]: grants %s on %q: want run.invoker on a deployable", r.typ, r.name, key, b.str("role"), name)
				continue
			}
			got[svc] = append(got[svc], b.str("member"))
		}
	}
	for _, r := range m.resources {
		for key, b := range m.instances(t, r) {
			if mem := b.str("member"); (mem == "allUsers" || mem == "allAuthenticatedUsers") && r.typ != "google_cloud_run_v2_service_iam_member" {
				t.Errorf("%s.%s[%s]: %s gets %s", r.typ, r.name, key, mem, b.str("role"))
			}
		}
	}
	for _, d := range s.Deployables {
		var want []string
		if d.Ingress == IngressPublic {
			want = append(want, "allUsers")
		}
		for _, c := range d.Callers {
			if c == Scheduler {
				want = append(want, "google_service_account.scheduler.member")
			} else {
				want = append(want, "google_service_account.deployable["+c+"].member")
			}
		}
		if d.Ingress == IngressInternal {
			for _, u := range s.Deployables {
				if slices.Contains(u.Uses, d.Name) {
					want = append(want, "google_service_account.deployable["+u.Name+"].member")
				}
			}
		}
		if len(s.PushTo(d.Name)) > 0 {
			want = append(want, "google_service_account.push["+d.Name+"].member")
		}
		slices.Sort(want)
		g := slices.Sorted(slices.Values(got[d.Name]))
		if !slices.Equal(g, want) {
			t.Errorf("run.invoker on %s (%s) = %v, want %v", d.Name, d.Ingress, g, want)
		}
	}
}

// checkSigningKey: the signing key's secret is readable by exactly the
// deployables that mint tokens (they issue them, or call internal methods
// with service credentials) and the scheduler; a deployable that only uses
// others, internal ones included, forwards its callers' tokens and gets none.
func checkSigningKey(t *testing.T, s *Stack, m *tfModel) {
	t.Helper()
	var got []string
	for key, b := range m.instances(t, m.resource(t, "google_secret_manager_secret_iam_member", "jwt_signing_key")) {
		if b.str("secret_id") != "google_secret_manager_secret.jwt_signing_key.id" || b.str("role") != "roles/secretmanager.secretAccessor" {
			t.Errorf("jwt_signing_key[%s]: %s on %s, want secretAccessor on the signing key", key, b.str("role"), b.str("secret_id"))
		}
		got = append(got, b.str("member"))
	}
	want := []string{"google_service_account.scheduler.member"}
	for _, d := range s.Deployables {
		if d.NeedsSigningKey() {
			want = append(want, "google_service_account.deployable["+d.Name+"].member")
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("signing key readers = %v, want %v", got, want)
	}
}

// checkPubSub: topics and subscriptions as in stack.yaml; push ones go to
// their function's URL at /projects/P/topics/T with its OIDC identity and
// have a dead-letter policy.
func checkPubSub(t *testing.T, s *Stack, m *tfModel) {
	t.Helper()
	wantKeys(t, "topics", m.resource(t, "google_pubsub_topic", "topic"), names(s.Topics, func(tp Topic) string { return tp.Name }))
	subs := m.resource(t, "google_pubsub_subscription", "subscription")
	wantKeys(t, "subscriptions", subs, names(s.Subscriptions, func(sub Subscription) string { return sub.Name }))
	insts := m.instances(t, subs)
	for _, sub := range s.Subscriptions {
		b := insts[sub.Name]
		if b == nil {
			continue
		}
		checks := []struct{ what, got, want string }{
			{"topic", b.str("topic"), "google_pubsub_topic.topic[" + sub.Topic + "].id"},
			{"ack_deadline_seconds", b.str("ack_deadline_seconds"), fmt.Sprint(int(sub.AckDeadline.Seconds()))},
			{"push", fmt.Sprint(b.block("push_config") != nil), fmt.Sprint(sub.Push != "")},
		}
		if sub.Push != "" {
			pc, dl, rp := b.block("push_config"), b.block("dead_letter_policy"), b.block("retry_policy")
			uri := "google_cloud_run_v2_service.deployable[" + sub.Push + "].uri"
			checks = append(checks, []struct{ what, got, want string }{
				{"push_endpoint", pc.str("push_endpoint"), uri + "/projects/" + testProject + "/topics/" + sub.Topic},
				{"oidc service account", pc.block("oidc_token").str("service_account_email"), "google_service_account.push[" + sub.Push + "].email"},
				{"oidc audience", pc.block("oidc_token").str("audience"), uri},
				{"dead_letter_topic", dl.str("dead_letter_topic"), "google_pubsub_topic.topic[" + sub.DeadLetterTopic + "].id"},
				{"max_delivery_attempts", dl.str("max_delivery_attempts"), fmt.Sprint(sub.MaxDeliveryAttempts)},
				{"minimum_backoff", rp.str("minimum_backoff"), fmt.Sprintf("%ds", int(sub.MinBackoff.Seconds()))},
				{"maximum_backoff", rp.str("maximum_backoff"), fmt.Sprintf("%ds", int(sub.MaxBackoff.Seconds()))},
			}...)
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("subscription %s: %s = %q, want %q", sub.Name, ck.what, ck.got, ck.want)
			}
		}
	}
}

// TestTerraformCanary: a canary entry splits a service's traffic between
// the tagged latest revision and the stable one.
func TestTerraformCanary(t *testing.T) {
	vars := testVars()
	vars["canary"] = cty.ObjectVal(map[string]cty.Value{"order": cty.ObjectVal(map[string]cty.Value{
		"stable_revision": cty.StringVal("order-00007-abc"), "percent": cty.NumberIntVal(10),
	})})
	m := loadTerraform(t, vars)
	insts := m.instances(t, m.resource(t, "google_cloud_run_v2_service", "deployable"))
	var got []string
	for _, tr := range insts["order"].blocks["traffic"] {
		got = append(got, fmt.Sprintf("%s %s %s%%", tr.str("tag"), tr.str("revision"), tr.str("percent")))
	}
	want := []string{"stable order-00007-abc 90%", "canary  10%"}
	if !slices.Equal(got, want) {
		t.Errorf("order traffic = %q, want %q", got, want)
	}
	if tr := insts["user"].blocks["traffic"]; len(tr) != 1 || tr[0].str("percent") != "100" || tr[0].str("tag") != "" {
		t.Errorf("user traffic without a canary: %d blocks, want 100%% to the latest", len(tr))
	}
}

// TestTerraformUsesEveryVariable: a declared variable nothing reads is a
// setting that silently does nothing.
func TestTerraformUsesEveryVariable(t *testing.T) {
	files := parseTerraform(t)
	declared, used := map[string]bool{}, map[string]bool{}
	for _, body := range files {
		for _, b := range body.Blocks {
			if b.Type == "variable" {
				declared[b.Labels[0]] = true
			}
		}
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if e, ok := n.(*hclsyntax.ScopeTraversalExpr); ok && e.Traversal.RootName() == "var" && len(e.Traversal) > 1 {
				if a, ok := e.Traversal[1].(hcl.TraverseAttr); ok {
					used[a.Name] = true
				}
			}
			return nil
		})
	}
	for v := range declared {
		if !used[v] {
			t.Errorf("variable %q is declared but never used", v)
		}
	}
	for v := range used {
		if !declared[v] {
			t.Errorf("var.%s is used but not declared", v)
		}
	}
}

// TestTerraformOutputs: endpoints lists every public deployable (the
// gateway's HTTP/JSON URL among them); cli_env points the shopfn command, a
// gRPC client, at the public gRPC services only.
func TestTerraformOutputs(t *testing.T) {
	s := mustStack(t)
	m := loadTerraform(t, testVars())
	out := map[string]cty.Value{}
	for _, path := range sortedKeys(m.files) {
		for _, b := range m.files[path].Blocks {
			if b.Type != "output" {
				continue
			}
			v, diags := b.Body.Attributes["value"].Expr.Value(m.ctx)
			if diags.HasErrors() {
				t.Errorf("output %s: %v", b.Labels[0], diags)
				continue
			}
			out[b.Labels[0]] = v
		}
	}
	uri := func(name string) string { return "google_cloud_run_v2_service.deployable[" + name + "].uri" }
	want := map[string]string{}
	var wantCLI []string
	for _, d := range s.Deployables {
		if d.Ingress != IngressPublic {
			continue
		}
		want[d.Name] = uri(d.Name)
		if d.Kind == KindGRPC {
			wantCLI = append(wantCLI, "export "+envName(d.Name, "ADDR")+"="+uri(d.Name))
		}
	}
	got := map[string]string{}
	if v, ok := out["endpoints"]; ok && v.CanIterateElements() {
		for k, e := range v.AsValueMap() {
			got[k] = e.AsString()
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("output endpoints = %v, want %v", got, want)
	}
	var gotCLI []string
	if v, ok := out["cli_env"]; ok && v.Type() == cty.String {
		gotCLI = strings.Split(v.AsString(), "\n")
	}
	slices.Sort(gotCLI)
	slices.Sort(wantCLI)
	if !slices.Equal(gotCLI, wantCLI) {
		t.Errorf("output cli_env = %q, want %q", gotCLI, wantCLI)
	}
}

// checkFirestoreIndexes checks one google_firestore_index per firestoreIndexes
// entry of stack.yaml, on its deployable's database, with its fields in
// order.
func checkFirestoreIndexes(t *testing.T, s *Stack, m *tfModel) {
	t.Helper()
	type want struct {
		deployable string
		ix         FirestoreIndex
	}
	wants := map[string]want{}
	for _, d := range s.Deployables {
		for i, ix := range d.FirestoreIndexes {
			wants[fmt.Sprintf("%s-%d", d.Name, i)] = want{d.Name, ix}
		}
	}
	if len(wants) == 0 {
		t.Fatal("stack.yaml declares no Firestore index; the catalog's listings need some")
	}
	r := m.resource(t, "google_firestore_index", "index")
	wantKeys(t, "Firestore indexes", r, slices.Sorted(maps.Keys(wants)))
	for key, b := range m.instances(t, r) {
		w, ok := wants[key]
		if !ok {
			continue
		}
		if got, wantDB := b.str("database"), "google_firestore_database.db["+w.deployable+"].name"; got != wantDB {
			t.Errorf("index %s: database = %q, want %q", key, got, wantDB)
		}
		if got := b.str("collection"); got != w.ix.Collection {
			t.Errorf("index %s: collection = %q, want %q", key, got, w.ix.Collection)
		}
		fields := b.blocks["fields"]
		if len(fields) != len(w.ix.Fields) {
			t.Errorf("index %s: %d fields, want %d (%v)", key, len(fields), len(w.ix.Fields), w.ix.Fields)
			continue
		}
		for i, f := range w.ix.Fields {
			path, mode, _ := strings.Cut(f, " ")
			order, array := "ASCENDING", ""
			switch mode {
			case "desc":
				order = "DESCENDING"
			case "contains":
				order, array = "", "CONTAINS"
			}
			got := fields[i]
			if got.str("field_path") != path || got.str("order") != order || got.str("array_config") != array {
				t.Errorf("index %s field %d = {%q %q %q}, want {%q %q %q} for %q", key, i,
					got.str("field_path"), got.str("order"), got.str("array_config"), path, order, array, f)
			}
		}
	}
}
