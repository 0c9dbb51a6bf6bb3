package infra

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// k8sObjects are the decoded manifests of a directory, by kind.
type k8sObjects struct {
	services   map[string]*servingv1.Service
	deploys    map[string]*appsv1.Deployment
	cronJobs   map[string]*batchv1.CronJob
	jobs       map[string]*batchv1.Job
	configMaps map[string]*corev1.ConfigMap
	other      []string
}

// kustomizationFile is the part of kustomize's Kustomization we use.
type kustomizationFile struct {
	APIVersion      string   `json:"apiVersion"`
	Kind            string   `json:"kind"`
	Namespace       string   `json:"namespace,omitempty"`
	Resources       []string `json:"resources"`
	Patches         []patch  `json:"patches,omitempty"`
	SecretGenerator []struct {
		Name string   `json:"name"`
		Envs []string `json:"envs"`
	} `json:"secretGenerator,omitempty"`
}

type patch struct {
	Path   string `json:"path"`
	Target struct {
		Group, Version, Kind, Name string
	} `json:"target"`
}

type jsonPatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// splitYAML splits a multi-document YAML file.
func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// decodeDir decodes every manifest listed by dir/kustomization.yaml
// strictly into its Kubernetes or Knative type: an unknown or misplaced
// field fails.
func decodeDir(t *testing.T, dir string) (kustomizationFile, k8sObjects) {
	t.Helper()
	var k kustomizationFile
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err == nil {
		err = yaml.UnmarshalStrict(b, &k)
	}
	if err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	objs := k8sObjects{services: map[string]*servingv1.Service{}, deploys: map[string]*appsv1.Deployment{},
		cronJobs: map[string]*batchv1.CronJob{}, jobs: map[string]*batchv1.Job{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range k.Resources {
		if !strings.HasSuffix(r, ".yaml") {
			continue // a directory: decoded on its own
		}
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("%s lists %s: %v", dir, r, err)
		}
		for _, doc := range splitYAML(b) {
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s/%s: %v", dir, r, err)
			}
			var name string
			var err error
			switch meta.APIVersion + " " + meta.Kind {
			case "serving.knative.dev/v1 Service":
				var o servingv1.Service
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
				objs.services[name] = &o
			case "apps/v1 Deployment":
				var o appsv1.Deployment
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
				objs.deploys[name] = &o
			case "batch/v1 CronJob":
				var o batchv1.CronJob
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
				objs.cronJobs[name] = &o
			case "batch/v1 Job":
				var o batchv1.Job
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
				objs.jobs[name] = &o
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
				objs.configMaps[name] = &o
			case "v1 Service":
				var o corev1.Service
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
			case "v1 Namespace":
				var o corev1.Namespace
				err, name = yaml.UnmarshalStrict(doc, &o), o.Name
			default:
				t.Errorf("%s/%s: unexpected %s %s", dir, r, meta.APIVersion, meta.Kind)
				continue
			}
			if err != nil {
				t.Errorf("%s/%s: %s %s: %v", dir, r, meta.Kind, name, err)
			}
			objs.other = append(objs.other, meta.Kind+"/"+name)
		}
	}
	return k, objs
}

// readPatch reads a JSON patch file strictly.
func readPatch(t *testing.T, path string) []jsonPatchOp {
	t.Helper()
	var ops []jsonPatchOp
	b, err := os.ReadFile(path)
	if err == nil {
		err = yaml.UnmarshalStrict(b, &ops)
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ops
}

// patchedEnv returns the environment a patch file sets: plain values, and
// secret references as "secret:NAME/KEY".
func patchedEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	for _, op := range readPatch(t, path) {
		if op.Op != "add" || op.Path != "/spec/template/spec/containers/0/env" {
			continue
		}
		var env []corev1.EnvVar
		dec := json.NewDecoder(bytes.NewReader(op.Value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			t.Fatalf("%s: env: %v", path, err)
		}
		out := map[string]string{}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				continue
			}
			out[e.Name] = e.Value
		}
		return out
	}
	t.Fatalf("%s sets no environment", path)
	return nil
}

// TestKnativeServicesFollowStack: infra/knative/services has exactly one
// Knative Service per deployable, decoded strictly into knative.dev/serving
// types, with stack.yaml's scale, concurrency, timeout, limits, the h2c port
// for gRPC, its probes, and cluster-local visibility when internal.
func TestKnativeServicesFollowStack(t *testing.T) {
	s := mustStack(t)
	_, objs := decodeDir(t, filepath.Join(knativeDir, "services"))
	got := slices.Sorted(maps.Keys(objs.services))
	want := names(s.Deployables, func(d Deployable) string { return d.Name })
	if !slices.Equal(got, want) {
		t.Errorf("Knative Services = %v, want the deployables %v", got, want)
	}
	for _, d := range s.Deployables {
		svc := objs.services[d.Name]
		if svc == nil {
			continue
		}
		spec := svc.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", d.Name, len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		ann := svc.Spec.Template.Annotations
		var port corev1.ContainerPort
		if len(c.Ports) == 1 {
			port = c.Ports[0]
		}
		visibility := svc.Labels["networking.knative.dev/visibility"]
		checks := []struct{ what, got, want string }{
			{"image", c.Image, d.Name},
			{"min-scale", ann["autoscaling.knative.dev/min-scale"], "0"},
			{"max-scale", ann["autoscaling.knative.dev/max-scale"], fmt.Sprint(d.MaxInstances)},
			{"containerConcurrency", fmt.Sprint(ptrVal(spec.ContainerConcurrency)), fmt.Sprint(d.Concurrency)},
			{"timeoutSeconds", fmt.Sprint(ptrVal(spec.TimeoutSeconds)), fmt.Sprint(int(d.Timeout.Seconds()))},
			{"cpu limit", c.Resources.Limits.Cpu().String(), d.CPU},
			{"memory limit", c.Resources.Limits.Memory().String(), d.Memory},
			{"port", fmt.Sprintf("%s %d", port.Name, port.ContainerPort), fmt.Sprintf("%s %d", portName[d.Kind], containerPort)},
			{"visibility", visibility, map[string]string{IngressInternal: "cluster-local"}[d.Ingress]},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("Knative Service %s: %s = %q, want %q", d.Name, ck.what, ck.got, ck.want)
			}
		}
		switch d.Kind {
		case KindGRPC:
			if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil || c.LivenessProbe == nil || c.LivenessProbe.GRPC == nil {
				t.Errorf("Knative Service %s: want grpc.health.v1 readiness and liveness probes", d.Name)
			}
		case KindHTTP:
			for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != healthPath || p.HTTPGet.Port.IntValue() != containerPort {
					t.Errorf("Knative Service %s: want an HTTP %s probe GET %s on %d, got %+v", d.Name, what, healthPath, containerPort, p)
				}
			}
		case KindFunction:
			if c.ReadinessProbe == nil || c.ReadinessProbe.TCPSocket == nil {
				t.Errorf("Knative Service %s: want a TCP readiness probe", d.Name)
			}
		}
		// What Knative's webhook would say: defaults applied, then its
		// validation (one port, probe handlers and ports, timeouts); its
		// warnings (security context defaults) are not failures.
		v := svc.DeepCopy()
		ctx := knativeWebhookContext(t)
		v.SetDefaults(ctx)
		if err := v.Validate(ctx).Filter(apis.ErrorLevel); err != nil {
			t.Errorf("Knative Service %s: Knative rejects it: %v", d.Name, err)
		}
	}
}

// knativeMaxRevisionTimeout is the max-revision-timeout-seconds the
// cluster's config-defaults must allow (Knative's default is 600): the
// longest timeout in stack.yaml, support's hour-long chats. docs/deploy.md
// says so.
const knativeMaxRevisionTimeout = 3600

// knativeWebhookContext is the context Knative's webhook defaults and
// validates a Service in, for a create, on a cluster configured as
// docs/deploy.md says.
func knativeWebhookContext(t *testing.T) context.Context {
	t.Helper()
	defaults, err := config.NewDefaultsConfigFromMap(map[string]string{"max-revision-timeout-seconds": fmt.Sprint(knativeMaxRevisionTimeout)})
	if err != nil {
		t.Fatal(err)
	}
	return config.ToContext(apis.WithinCreate(context.Background()), &config.Config{Defaults: defaults})
}

func ptrVal[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TestKnativeDevFollowsStack: the development overlay gives every Service
// its environment (cluster-local addresses, emulators, the JWT Secret),
// creates every topic and push subscription in the Pub/Sub emulator wired
// to the function's cluster URL, every bucket, and a CronJob per schedule.
func TestKnativeDevFollowsStack(t *testing.T) {
	s := mustStack(t)
	dir := filepath.Join(knativeDir, "dev")
	k, objs := decodeDir(t, dir)
	if k.Namespace != knativeNamespace || !slices.Contains(k.Resources, "../services") {
		t.Errorf("dev kustomization: namespace %q, resources %v: want namespace %q over ../services", k.Namespace, k.Resources, knativeNamespace)
	}
	patched := map[string]string{}
	for _, p := range k.Patches {
		patched[p.Target.Name] = p.Path
	}
	for _, d := range s.Deployables {
		path, ok := patched[d.Name]
		if !ok {
			t.Errorf("dev: no environment patch for %s", d.Name)
			continue
		}
		got := patchedEnv(t, filepath.Join(dir, path))
		want := wantEnv(s, d, knative(s))
		want["SHOPFN_JWT_PUBLIC_KEYS"] = "secret:shopfn-jwt/SHOPFN_JWT_PUBLIC_KEYS"
		if d.NeedsSigningKey() {
			want["SHOPFN_JWT_SIGNING_KEY"] = "secret:shopfn-jwt/SHOPFN_JWT_SIGNING_KEY"
		}
		if !maps.Equal(got, want) {
			t.Errorf("dev env of %s\n got %v\nwant %v", d.Name, got, want)
		}
	}
	for _, emu := range []string{"pubsub-emulator", "firestore-emulator", "gcs-emulator"} {
		if objs.deploys[emu] == nil {
			t.Errorf("dev: no %s Deployment", emu)
		}
	}

	cm := objs.configMaps["emulator-setup"]
	if cm == nil || objs.jobs["emulator-setup"] == nil {
		t.Fatalf("dev: no emulator-setup ConfigMap and Job")
	}
	if got, want := strings.Fields(cm.Data["topics"]), names(s.Topics, func(tp Topic) string { return tp.Name }); !slices.Equal(got, want) {
		t.Errorf("emulator topics = %v, want %v", got, want)
	}
	if got, want := strings.Fields(cm.Data["buckets"]), names(s.Buckets, func(b Bucket) string { return b.Name }); !slices.Equal(got, want) {
		t.Errorf("emulator buckets = %v, want %v", got, want)
	}
	var subs []string
	for key := range cm.Data {
		if name, ok := strings.CutPrefix(key, "subscription."); ok {
			subs = append(subs, strings.TrimSuffix(name, ".json"))
		}
	}
	slices.Sort(subs)
	if want := names(s.Subscriptions, func(sub Subscription) string { return sub.Name }); !slices.Equal(subs, want) {
		t.Errorf("emulator subscriptions = %v, want %v", subs, want)
	}
	for _, sub := range s.Subscriptions {
		var got emulatorSubscription
		dec := json.NewDecoder(strings.NewReader(cm.Data["subscription."+sub.Name+".json"]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Errorf("subscription %s: %v", sub.Name, err)
			continue
		}
		endpoint := ""
		if got.PushConfig != nil {
			endpoint = got.PushConfig.PushEndpoint
		}
		wantEndpoint := ""
		if sub.Push != "" {
			wantEndpoint = fmt.Sprintf("http://%s.%s.svc.cluster.local/projects/%s/topics/%s", sub.Push, knativeNamespace, s.Project, sub.Topic)
		}
		dl := ""
		if got.DeadLetterPolicy != nil {
			dl = fmt.Sprintf("%s after %d", got.DeadLetterPolicy.DeadLetterTopic, got.DeadLetterPolicy.MaxDeliveryAttempts)
		}
		wantDL := ""
		if sub.DeadLetterTopic != "" {
			wantDL = fmt.Sprintf("projects/%s/topics/%s after %d", s.Project, sub.DeadLetterTopic, sub.MaxDeliveryAttempts)
		}
		if endpoint != wantEndpoint || dl != wantDL || got.Topic != "projects/"+s.Project+"/topics/"+sub.Topic {
			t.Errorf("subscription %s: topic %q push %q dead letters %q, want push %q dead letters %q", sub.Name, got.Topic, endpoint, dl, wantEndpoint, wantDL)
		}
	}

	if got, want := slices.Sorted(maps.Keys(objs.cronJobs)), names(s.Schedules, func(sc Schedule) string { return "schedule-" + sc.Name }); !slices.Equal(got, want) {
		t.Errorf("CronJobs = %v, want %v", got, want)
	}
	for _, sc := range s.Schedules {
		cj := objs.cronJobs["schedule-"+sc.Name]
		if cj == nil {
			continue
		}
		c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
		want := []string{"call", "--addr", knative(s).addr(sc.Target), sc.Method}
		if c.Image != s.CLI.Name || !slices.Equal(c.Args, want) {
			t.Errorf("CronJob %s: %s %v, want %s %v", cj.Name, c.Image, c.Args, s.CLI.Name, want)
		}
	}
}

// TestKnativeCloudRunOverlay: the overlay skaffold's Cloud Run profile
// deploys patches every Service with its Cloud Run ingress, identity and
// environment, and contains nothing Cloud Run cannot take.
func TestKnativeCloudRunOverlay(t *testing.T) {
	s := mustStack(t)
	dir := filepath.Join(knativeDir, "cloudrun")
	k, objs := decodeDir(t, dir)
	if !slices.Equal(k.Resources, []string{"../services"}) || len(objs.other) != 0 {
		t.Errorf("cloudrun kustomization resources = %v (+%v), want only ../services", k.Resources, objs.other)
	}
	patched := map[string]string{}
	for _, p := range k.Patches {
		patched[p.Target.Name] = p.Path
	}
	for _, d := range s.Deployables {
		path, ok := patched[d.Name]
		if !ok {
			t.Errorf("cloudrun: no patch for %s", d.Name)
			continue
		}
		var ingress string
		for _, op := range readPatch(t, filepath.Join(dir, path)) {
			if op.Path == "/metadata/annotations" {
				var ann map[string]string
				_ = json.Unmarshal(op.Value, &ann)
				ingress = ann["run.googleapis.com/ingress"]
			}
		}
		if want := map[string]string{IngressPublic: "all", IngressInternal: "internal"}[d.Ingress]; ingress != want {
			t.Errorf("cloudrun %s: ingress %q, want %q", d.Name, ingress, want)
		}
		got := patchedEnv(t, filepath.Join(dir, path))
		want := wantEnv(s, d, cloudRunPlaceholders(s))
		want["SHOPFN_JWT_PUBLIC_KEYS"] = "JWT_PUBLIC_KEYS"
		if d.NeedsSigningKey() {
			want["SHOPFN_JWT_SIGNING_KEY"] = "secret:shopfn-jwt-signing-key/latest"
		}
		if !maps.Equal(got, want) {
			t.Errorf("cloudrun env of %s\n got %v\nwant %v", d.Name, got, want)
		}
	}
}
