package infra

import (
	"fmt"
	"strings"
)

// platform is where a deployable runs, as far as its environment goes.
type platform struct {
	project  string
	addr     func(name string) string // URL of a deployable
	bucket   func(name string) string // gocloud.dev/blob URL of a bucket
	database func(name string) string // Firestore database of a deployable's store
	// emulators adds the emulator hosts (Knative development cluster).
	emulators bool
}

// envName is SHOPFN_<NAME>_<what> for a stack name ("order-x" → ORDER_X).
func envName(name, what string) string {
	return "SHOPFN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + what
}

// wantEnv is the plain environment (secrets aside) a deployable must be
// given on p, by the names the code reads: shared/serve (SHOPFN_DATA_DIR),
// shared/auth (SHOPFN_JWT_*; the signing key comes from a secret),
// shared/telemetry (GOOGLE_CLOUD_PROJECT), each functions/NAME Config
// (SHOPFN_<CALLEE>_ADDR; bucket URLs under the bucket's env), and the Firestore selection
// (SHOPFN_STORE, SHOPFN_FIRESTORE_DATABASE: not read by any code yet).
// PORT is set by Cloud Run and Knative themselves.
func wantEnv(s *Stack, d Deployable, p platform) map[string]string {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":      p.project,
		"SHOPFN_DATA_DIR":           "/tmp/shopfn",
		"SHOPFN_JWT_DEV_KEY":        "false",
		"SHOPFN_TRUSTED_PROXY_HOPS": "1",
	}
	if d.Database != "" {
		env["SHOPFN_STORE"] = "firestore"
		env["SHOPFN_FIRESTORE_DATABASE"] = p.database(d.Name)
		if p.emulators {
			env["FIRESTORE_EMULATOR_HOST"] = "firestore-emulator:8086"
		}
	}
	if p.emulators && len(d.Publishes) > 0 {
		env["PUBSUB_EMULATOR_HOST"] = "pubsub-emulator:8085"
	}
	for _, c := range d.Dials() {
		env[envName(c, "ADDR")] = p.addr(c)
	}
	if d.Kind == KindFunction {
		// Cloud Run checks the push OIDC token; the emulator signs nothing.
		env["SHOPFN_PUSH_AUTH"] = map[bool]string{true: "none", false: "cloudrun"}[p.emulators]
	}
	if !p.emulators && len(d.Dials()) > 0 {
		env["SHOPFN_ID_TOKENS"] = "true" // Cloud Run's run.invoker check (shared/dial)
	}
	for _, b := range d.Buckets {
		env[s.bucket(b).Env] = p.bucket(b)
	}
	if p.emulators && len(d.Buckets) > 0 {
		env["STORAGE_EMULATOR_HOST"] = "gcs-emulator:4443"
	}
	for k, v := range d.Env {
		env[k] = v
	}
	return env
}

// cloudRun is the platform of infra/terraform under the test variables.
func cloudRun(s *Stack) platform {
	return platform{
		project:  testProject,
		addr:     func(n string) string { return fmt.Sprintf("https://%s-%s.%s.run.app", n, testProjectNumber, s.Region) },
		bucket:   func(b string) string { return "gs://" + testProject + "-" + b },
		database: func(n string) string { d, _ := s.Deployable(n); return "shopfn-" + d.Database },
	}
}

// knativeNamespace is where infra/knative puts everything.
const knativeNamespace = "shopfn"

// knative is the platform of infra/knative: cluster-local URLs, emulators.
func knative(s *Stack) platform {
	return platform{
		project:   s.Project,
		addr:      func(n string) string { return fmt.Sprintf("http://%s.%s.svc.cluster.local", n, knativeNamespace) },
		bucket:    func(b string) string { return "gs://" + b },
		database:  func(n string) string { d, _ := s.Deployable(n); return "shopfn-" + d.Database },
		emulators: true,
	}
}

func (s *Stack) bucket(name string) Bucket {
	for _, b := range s.Buckets {
		if b.Name == name {
			return b
		}
	}
	return Bucket{}
}
