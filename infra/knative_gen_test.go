package infra

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// update rewrites the generated manifests: go test ./infra -run TestKnativeManifestsUpToDate -update
var update = flag.Bool("update", false, "rewrite infra/knative from stack.yaml")

const knativeDir = "knative"

// Emulator images for the development cluster.
const (
	cloudSDKImage = "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"
	fakeGCSImage  = "fsouza/fake-gcs-server:1.52"
	curlImage     = "curlimages/curl:8.17.0"
)

// generatedHeader starts every generated file.
const generatedHeader = "# Generated from infra/stack.yaml by `go test ./infra -run TestKnativeManifestsUpToDate -update`. DO NOT EDIT.\n"

// containerPort is the port every deployable listens on ($PORT).
const containerPort = 8080

// portName names a kind's container port for Cloud Run and Knative: h2c
// (HTTP/2 cleartext end to end, which gRPC needs) for gRPC services,
// http1 for functions and HTTP servers (kind http, the gateway).
var portName = map[string]string{KindGRPC: "h2c", KindFunction: "http1", KindHTTP: "http1"}

// healthPath is where a kind http deployable answers 200 while it serves
// (functions/gateway's GET /healthz).
const healthPath = "/healthz"

// knativeFiles renders infra/knative from the stack:
//
//	services/   a Knative Service per deployable, platform-neutral
//	dev/        the development cluster: namespace, emulators (Pub/Sub,
//	            Firestore, GCS), the setup job creating topics, push
//	            subscriptions and buckets, CronJobs for the schedules, and
//	            each Service's environment
//	cloudrun/   the Services for skaffold's Cloud Run deployer
func knativeFiles(s *Stack) map[string][]byte {
	files := map[string][]byte{}
	put := func(path string, docs ...any) {
		var b bytes.Buffer
		b.WriteString(generatedHeader)
		for i, d := range docs {
			if i > 0 {
				b.WriteString("---\n")
			}
			y, err := yaml.Marshal(d)
			if err != nil {
				panic(err)
			}
			b.Write(y)
		}
		files[path] = b.Bytes()
	}

	var svcFiles []string
	for _, d := range s.Deployables {
		put("services/"+d.Name+".yaml", knativeService(d))
		svcFiles = append(svcFiles, d.Name+".yaml")
	}
	put("services/kustomization.yaml", kustomization(nil, svcFiles, nil))

	// Development cluster.
	k := knative(s)
	var devPatches, cloudPatches []any
	for _, d := range s.Deployables {
		put("dev/env-"+d.Name+".yaml", []any{envPatch(d, k.env(s, d), devSecrets)})
		devPatches = append(devPatches, patchRef(d.Name, "env-"+d.Name+".yaml"))
		c := cloudRunPlaceholders(s)
		ops := []any{envPatch(d, c.env(s, d), cloudRunSecrets),
			map[string]any{"op": "add", "path": "/metadata/annotations", "value": map[string]string{
				"run.googleapis.com/ingress": map[string]string{IngressPublic: "all", IngressInternal: "internal"}[d.Ingress],
			}},
			map[string]any{"op": "add", "path": "/spec/template/spec/serviceAccountName", "value": "shopfn-" + d.Name + "@PROJECT_ID.iam.gserviceaccount.com"},
		}
		if d.Ingress == IngressInternal {
			ops = append(ops, map[string]any{"op": "remove", "path": "/metadata/labels/networking.knative.dev~1visibility"})
		}
		put("cloudrun/patch-"+d.Name+".yaml", ops)
		cloudPatches = append(cloudPatches, patchRef(d.Name, "patch-"+d.Name+".yaml"))
	}
	put("dev/namespace.yaml", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": knativeNamespace}})
	put("dev/emulators.yaml", emulators()...)
	put("dev/setup.yaml", setup(s)...)
	var crons []any
	for _, sc := range s.Schedules {
		crons = append(crons, cronJob(s, sc))
	}
	put("dev/schedules.yaml", crons...)
	dev := kustomization([]string{"../services"}, []string{"namespace.yaml", "emulators.yaml", "setup.yaml", "schedules.yaml"}, devPatches)
	dev["namespace"] = knativeNamespace
	dev["secretGenerator"] = []any{map[string]any{"name": "shopfn-jwt", "envs": []string{"jwt.env"}}}
	put("dev/kustomization.yaml", dev)
	put("cloudrun/kustomization.yaml", kustomization([]string{"../services"}, nil, cloudPatches))
	return files
}

func kustomization(dirs, files []string, patches []any) map[string]any {
	k := map[string]any{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": slices.Concat(dirs, files)}
	if patches != nil {
		k["patches"] = patches
	}
	return k
}

func patchRef(name, path string) map[string]any {
	return map[string]any{"path": path, "target": map[string]string{"group": "serving.knative.dev", "version": "v1", "kind": "Service", "name": name}}
}

func knativeService(d Deployable) map[string]any {
	port := portName[d.Kind]
	c := map[string]any{
		"name":  d.Name,
		"image": d.Name, // the skaffold artifact (ko) of the same name
		"ports": []any{map[string]any{"name": port, "containerPort": containerPort}},
		"resources": map[string]any{
			"requests": map[string]string{"cpu": "100m", "memory": d.Memory},
			"limits":   map[string]string{"cpu": d.CPU, "memory": d.Memory},
		},
	}
	switch d.Kind {
	case KindGRPC:
		c["readinessProbe"] = map[string]any{"grpc": map[string]any{"port": containerPort}, "periodSeconds": 1}
		c["livenessProbe"] = map[string]any{"grpc": map[string]any{"port": containerPort}, "periodSeconds": 30, "timeoutSeconds": 2}
	case KindHTTP:
		get := map[string]any{"path": healthPath, "port": containerPort}
		c["readinessProbe"] = map[string]any{"httpGet": get, "periodSeconds": 1}
		c["livenessProbe"] = map[string]any{"httpGet": get, "periodSeconds": 30, "timeoutSeconds": 2}
	case KindFunction:
		c["readinessProbe"] = map[string]any{"tcpSocket": map[string]any{"port": containerPort}, "periodSeconds": 1}
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "shopfn", "app.kubernetes.io/name": d.Name}
	if d.Ingress == IngressInternal {
		labels["networking.knative.dev/visibility"] = "cluster-local"
	}
	return map[string]any{
		"apiVersion": "serving.knative.dev/v1",
		"kind":       "Service",
		"metadata":   map[string]any{"name": d.Name, "labels": labels},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"annotations": map[string]string{
				"autoscaling.knative.dev/min-scale": fmt.Sprint(d.MinInstances),
				"autoscaling.knative.dev/max-scale": fmt.Sprint(d.MaxInstances),
			}},
			"spec": map[string]any{
				"containerConcurrency": d.Concurrency,
				"timeoutSeconds":       int(d.Timeout.Seconds()),
				"containers":           []any{c},
			},
		}},
	}
}

// env is a deployable's plain environment on p (see wantEnv).
func (p platform) env(s *Stack, d Deployable) map[string]string { return wantEnv(s, d, p) }

// Where the JWT keys come from: in the development cluster both from the
// shopfn-jwt Secret (kustomize makes it from dev/jwt.env); on Cloud Run the
// signing key from Secret Manager (Cloud Run's YAML names the secret and
// the version as name and key) and the public keys as a placeholder.
const (
	devSecrets = iota
	cloudRunSecrets
)

// envPatch is the JSON patch setting a Service's environment.
func envPatch(d Deployable, env map[string]string, secrets int) map[string]any {
	var list []any
	for _, k := range sortedKeys(env) {
		list = append(list, map[string]any{"name": k, "value": env[k]})
	}
	ref := func(name, key string) map[string]any {
		return map[string]any{"secretKeyRef": map[string]any{"name": name, "key": key}}
	}
	switch secrets {
	case devSecrets:
		list = append(list, map[string]any{"name": "SHOPFN_JWT_PUBLIC_KEYS", "valueFrom": ref("shopfn-jwt", "SHOPFN_JWT_PUBLIC_KEYS")})
		if d.NeedsSigningKey() {
			list = append(list, map[string]any{"name": "SHOPFN_JWT_SIGNING_KEY", "valueFrom": ref("shopfn-jwt", "SHOPFN_JWT_SIGNING_KEY")})
		}
	case cloudRunSecrets:
		list = append(list, map[string]any{"name": "SHOPFN_JWT_PUBLIC_KEYS", "value": "JWT_PUBLIC_KEYS"})
		if d.NeedsSigningKey() {
			list = append(list, map[string]any{"name": "SHOPFN_JWT_SIGNING_KEY", "valueFrom": ref("shopfn-jwt-signing-key", "latest")})
		}
	}
	return map[string]any{"op": "add", "path": "/spec/template/spec/containers/0/env", "value": list}
}

// cloudRunPlaceholders is the Cloud Run platform with the project left as
// PROJECT_ID / PROJECT_NUMBER for the skaffold cloudrun profile.
func cloudRunPlaceholders(s *Stack) platform {
	return platform{
		project:  "PROJECT_ID",
		addr:     func(n string) string { return fmt.Sprintf("https://%s-PROJECT_NUMBER.%s.run.app", n, s.Region) },
		bucket:   func(b string) string { return "gs://PROJECT_ID-" + b },
		database: func(n string) string { d, _ := s.Deployable(n); return "shopfn-" + d.Database },
	}
}

func emulators() []any {
	type emu struct {
		name, image string
		port        int
		args        []string
	}
	var out []any
	for _, e := range []emu{
		{"pubsub-emulator", cloudSDKImage, 8085, []string{"gcloud", "beta", "emulators", "pubsub", "start", "--host-port=0.0.0.0:8085"}},
		{"firestore-emulator", cloudSDKImage, 8086, []string{"gcloud", "emulators", "firestore", "start", "--host-port=0.0.0.0:8086"}},
		{"gcs-emulator", fakeGCSImage, 4443, []string{"/bin/fake-gcs-server", "-scheme", "http", "-port", "4443", "-backend", "memory", "-external-url", "http://gcs-emulator:4443"}},
	} {
		labels := map[string]string{"app.kubernetes.io/name": e.name, "app.kubernetes.io/part-of": "shopfn"}
		out = append(out,
			map[string]any{
				"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"name": e.name, "labels": labels},
				"spec": map[string]any{
					"replicas": 1,
					"selector": map[string]any{"matchLabels": labels},
					"template": map[string]any{
						"metadata": map[string]any{"labels": labels},
						"spec": map[string]any{"containers": []any{map[string]any{
							"name": e.name, "image": e.image, "command": e.args,
							"ports":          []any{map[string]any{"containerPort": e.port}},
							"readinessProbe": map[string]any{"tcpSocket": map[string]any{"port": e.port}, "periodSeconds": 2},
						}}},
					},
				},
			},
			map[string]any{
				"apiVersion": "v1", "kind": "Service",
				"metadata": map[string]any{"name": e.name, "labels": labels},
				"spec":     map[string]any{"selector": labels, "ports": []any{map[string]any{"port": e.port, "targetPort": e.port}}},
			})
	}
	return out
}

// emulatorSubscription is a subscription as the Pub/Sub REST API (and the
// emulator) takes it.
type emulatorSubscription struct {
	Topic              string `json:"topic"`
	AckDeadlineSeconds int    `json:"ackDeadlineSeconds"`
	PushConfig         *struct {
		PushEndpoint string `json:"pushEndpoint"`
	} `json:"pushConfig,omitempty"`
	DeadLetterPolicy *struct {
		DeadLetterTopic     string `json:"deadLetterTopic"`
		MaxDeliveryAttempts int    `json:"maxDeliveryAttempts"`
	} `json:"deadLetterPolicy,omitempty"`
	RetryPolicy *struct {
		MinimumBackoff string `json:"minimumBackoff"`
		MaximumBackoff string `json:"maximumBackoff"`
	} `json:"retryPolicy,omitempty"`
}

// pushEndpoint is where the emulator pushes a subscription: the function's
// cluster-local URL at the path functions-framework-go reads as a Pub/Sub
// push.
func pushEndpoint(s *Stack, sub Subscription) string {
	return knative(s).addr(sub.Push) + "/projects/" + s.Project + "/topics/" + sub.Topic
}

func emulatorSub(s *Stack, sub Subscription) emulatorSubscription {
	topic := func(n string) string { return "projects/" + s.Project + "/topics/" + n }
	out := emulatorSubscription{Topic: topic(sub.Topic), AckDeadlineSeconds: int(sub.AckDeadline.Seconds())}
	if sub.Push != "" {
		out.PushConfig = &struct {
			PushEndpoint string `json:"pushEndpoint"`
		}{pushEndpoint(s, sub)}
	}
	if sub.DeadLetterTopic != "" {
		out.DeadLetterPolicy = &struct {
			DeadLetterTopic     string `json:"deadLetterTopic"`
			MaxDeliveryAttempts int    `json:"maxDeliveryAttempts"`
		}{topic(sub.DeadLetterTopic), sub.MaxDeliveryAttempts}
	}
	if sub.MinBackoff.Duration > 0 {
		out.RetryPolicy = &struct {
			MinimumBackoff string `json:"minimumBackoff"`
			MaximumBackoff string `json:"maximumBackoff"`
		}{fmt.Sprintf("%ds", int(sub.MinBackoff.Seconds())), fmt.Sprintf("%ds", int(sub.MaxBackoff.Seconds()))}
	}
	return out
}

// setupScript creates the topics, subscriptions and buckets in the
// emulators (idempotent: "already exists" answers are fine).
const setupScript = `set -eu
P=/setup
until curl -fsS "http://pubsub-emulator:8085/v1/projects/$PROJECT/topics" >/dev/null; do sleep 1; done
until curl -fsS "http://gcs-emulator:4443/storage/v1/b" >/dev/null; do sleep 1; done
for t in $(cat $P/topics); do
  curl -sS -X PUT "http://pubsub-emulator:8085/v1/projects/$PROJECT/topics/$t" -o /dev/null -w "topic $t: %{http_code}\n"
done
for f in $P/subscription.*.json; do
  s=$(basename "$f" .json); s=${s#subscription.}
  curl -sS -X PUT -H 'Content-Type: application/json' --data @"$f" "http://pubsub-emulator:8085/v1/projects/$PROJECT/subscriptions/$s" -o /dev/null -w "subscription $s: %{http_code}\n"
done
for b in $(cat $P/buckets); do
  curl -sS -X POST -H 'Content-Type: application/json' --data "{\"name\":\"$b\"}" "http://gcs-emulator:4443/storage/v1/b?project=$PROJECT" -o /dev/null -w "bucket $b: %{http_code}\n"
done
`

func setup(s *Stack) []any {
	data := map[string]string{
		"topics":   strings.Join(names(s.Topics, func(t Topic) string { return t.Name }), "\n") + "\n",
		"buckets":  strings.Join(names(s.Buckets, func(b Bucket) string { return b.Name }), "\n") + "\n",
		"setup.sh": setupScript,
	}
	for _, sub := range s.Subscriptions {
		b, err := json.MarshalIndent(emulatorSub(s, sub), "", "  ")
		if err != nil {
			panic(err)
		}
		data["subscription."+sub.Name+".json"] = string(b) + "\n"
	}
	return []any{
		map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "emulator-setup"}, "data": data},
		map[string]any{
			"apiVersion": "batch/v1", "kind": "Job",
			"metadata": map[string]any{"name": "emulator-setup"},
			"spec": map[string]any{
				"backoffLimit": 10,
				"template": map[string]any{"spec": map[string]any{
					"restartPolicy": "OnFailure",
					"containers": []any{map[string]any{
						"name": "setup", "image": curlImage,
						"command":      []string{"sh", "/setup/setup.sh"},
						"env":          []any{map[string]any{"name": "PROJECT", "value": s.Project}},
						"volumeMounts": []any{map[string]any{"name": "setup", "mountPath": "/setup"}},
					}},
					"volumes": []any{map[string]any{"name": "setup", "configMap": map[string]any{"name": "emulator-setup"}}},
				}},
			},
		},
	}
}

// cronJob runs one schedule in the cluster the way Cloud Scheduler runs it
// in the cloud: `shopfn call --addr URL METHOD` in the cli image.
func cronJob(s *Stack, sc Schedule) map[string]any {
	every := sc.Every.Duration
	cron := fmt.Sprintf("*/%d * * * *", int(every.Minutes()))
	if every >= 60*60e9 {
		cron = fmt.Sprintf("0 */%d * * *", int(every.Hours()))
	}
	return map[string]any{
		"apiVersion": "batch/v1", "kind": "CronJob",
		"metadata": map[string]any{"name": "schedule-" + sc.Name},
		"spec": map[string]any{
			"schedule":          cron,
			"concurrencyPolicy": "Forbid",
			"jobTemplate": map[string]any{"spec": map[string]any{
				"backoffLimit": 0,
				"template": map[string]any{"spec": map[string]any{
					"restartPolicy": "Never",
					"containers": []any{map[string]any{
						"name": s.CLI.Name, "image": s.CLI.Name,
						"args": []string{"call", "--addr", knative(s).addr(sc.Target), sc.Method},
						"env": []any{
							map[string]any{"name": "SHOPFN_JWT_DEV_KEY", "value": "false"},
							map[string]any{"name": "SHOPFN_JWT_SIGNING_KEY", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "shopfn-jwt", "key": "SHOPFN_JWT_SIGNING_KEY"}}},
						},
					}},
				}},
			}},
		},
	}
}

// TestKnativeManifestsUpToDate fails when infra/knative differs from what
// stack.yaml generates (a deployable added, renamed or changed without
// regenerating). -update rewrites the files.
func TestKnativeManifestsUpToDate(t *testing.T) {
	want := knativeFiles(mustStack(t))
	if *update {
		for path, b := range want {
			full := filepath.Join(knativeDir, path)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, path := range sortedKeys(want) {
		got, err := os.ReadFile(filepath.Join(knativeDir, path))
		if err != nil || !bytes.Equal(got, want[path]) {
			t.Errorf("infra/knative/%s is missing or stale (%v): run go test ./infra -run TestKnativeManifestsUpToDate -update", path, err)
		}
	}
	// Generated files that stack.yaml no longer produces.
	err := filepath.WalkDir(knativeDir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel(knativeDir, path)
		b, _ := os.ReadFile(path)
		if _, ok := want[filepath.ToSlash(rel)]; !ok && bytes.HasPrefix(b, []byte(generatedHeader)) {
			t.Errorf("infra/knative/%s was generated for something stack.yaml no longer has: delete it", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
