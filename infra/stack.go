// Package infra holds shopfn's deployment description, stack.yaml, and the
// typed view of it that `shopfn dev`, the event relay and the push bridge
// read. Terraform and the Knative manifests read the same file; tests keep
// them from drifting apart.
package infra

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed stack.yaml
var stackYAML []byte

// YAML returns the embedded stack.yaml.
func YAML() []byte { return bytes.Clone(stackYAML) }

// Kinds of deployable.
const (
	KindGRPC     = "grpc"
	KindFunction = "function"
	// KindHTTP is a plain HTTP server (the gateway): HTTP/1.1 and h2c on
	// $PORT, GET /healthz answers 200 when it serves.
	KindHTTP = "http"
)

// Ingress settings.
const (
	IngressPublic   = "public"
	IngressInternal = "internal"
)

// Scheduler is the caller name of the schedules in Deployable.Callers.
const Scheduler = "scheduler"

// Stack is the whole deployment.
type Stack struct {
	Project       string         `yaml:"project"`
	Region        string         `yaml:"region"`
	Deployables   []Deployable   `yaml:"deployables"`
	Topics        []Topic        `yaml:"topics"`
	Subscriptions []Subscription `yaml:"subscriptions"`
	Buckets       []Bucket       `yaml:"buckets"`
	CLI           CLI            `yaml:"cli"`
	Schedules     []Schedule     `yaml:"schedules"`
}

// CLI is the shopfn command. Its container image runs the schedules
// (`shopfn call`): a Cloud Run job started by Cloud Scheduler in the cloud,
// CronJobs in Kubernetes.
type CLI struct {
	Name    string `yaml:"name"`    // image name
	Command string `yaml:"command"` // Go package path of its main, relative to the module
}

// Deployable is one container: a gRPC service or a CloudEvent function.
type Deployable struct {
	Name    string `yaml:"name"`
	Kind    string `yaml:"kind"`
	Command string `yaml:"command"` // Go package path of its main, relative to the module
	Ingress string `yaml:"ingress"`
	DevPort int    `yaml:"devPort"`

	MinInstances int      `yaml:"minInstances"`
	MaxInstances int      `yaml:"maxInstances"`
	Concurrency  int      `yaml:"concurrency"`
	CPU          string   `yaml:"cpu"`
	Memory       string   `yaml:"memory"`
	Timeout      Duration `yaml:"timeout"`

	Env       map[string]string `yaml:"env"`
	Database  string            `yaml:"database"`  // its own database; empty when stateless
	Buckets   []string          `yaml:"buckets"`   // buckets it reads and writes
	Publishes []string          `yaml:"publishes"` // topics it publishes to
	Calls     []string          `yaml:"calls"`     // deployables whose internal methods it calls
	Callers   []string          `yaml:"callers"`   // who may call its internal methods
	Uses      []string          `yaml:"uses"`      // deployables whose non-internal methods it calls with its callers' tokens
	// SignsTokens marks the deployable that issues access tokens; it holds
	// the signing key (as does every deployable that calls internal methods).
	SignsTokens bool `yaml:"signsTokens"`
	// FirestoreIndexes are the composite indexes its Firestore queries
	// need (single-field indexes Firestore keeps by itself).
	FirestoreIndexes []FirestoreIndex `yaml:"firestoreIndexes"`
}

// FirestoreIndex is a composite index of one collection. Each field is
// "PATH" (ascending), "PATH desc" or "PATH contains" (array-contains).
type FirestoreIndex struct {
	Collection string   `yaml:"collection"`
	Fields     []string `yaml:"fields"`
}

// indexField is one field of a FirestoreIndex.
var indexField = regexp.MustCompile(`^[a-z_][a-z0-9_]*( (desc|contains))?$`)

func (ix FirestoreIndex) check() error {
	if ix.Collection == "" || len(ix.Fields) < 2 {
		return fmt.Errorf("a Firestore index needs a collection and at least two fields (one field is a single-field index, which Firestore keeps by itself)")
	}
	for _, f := range ix.Fields {
		if !indexField.MatchString(f) {
			return fmt.Errorf("field %q of a Firestore index: want PATH, PATH desc or PATH contains", f)
		}
	}
	return nil
}

// NeedsSigningKey reports whether d mints tokens: it issues them, or it
// calls other deployables' internal methods with service credentials.
func (d Deployable) NeedsSigningKey() bool { return d.SignsTokens || len(d.Calls) > 0 }

// Dials returns the deployables whose addresses d needs: Calls, then Uses.
func (d Deployable) Dials() []string { return slices.Concat(d.Calls, d.Uses) }

// Topic is a Pub/Sub topic.
type Topic struct {
	Name string `yaml:"name"`
	// Event is the CloudEvent type published to it; empty for dead-letter
	// topics.
	Event string `yaml:"event"`
}

// Subscription is a Pub/Sub subscription; Push names the function it is
// delivered to, empty for pull subscriptions (dead letters).
type Subscription struct {
	Name                string   `yaml:"name"`
	Topic               string   `yaml:"topic"`
	Push                string   `yaml:"push"`
	AckDeadline         Duration `yaml:"ackDeadline"`
	MinBackoff          Duration `yaml:"minBackoff"`
	MaxBackoff          Duration `yaml:"maxBackoff"`
	MaxDeliveryAttempts int      `yaml:"maxDeliveryAttempts"`
	DeadLetterTopic     string   `yaml:"deadLetterTopic"`
	// Ordered delivers messages with the same ordering key one at a time,
	// in publish order (the relay sets the aggregate id as key). Off by
	// default: it costs throughput, and a topic of one event type rarely
	// needs it.
	Ordered bool `yaml:"ordered"`
}

// Bucket is an object storage bucket.
type Bucket struct {
	Name string `yaml:"name"`
	// Env is the environment variable through which the deployables that
	// use the bucket get its URL (a gocloud.dev/blob URL).
	Env string `yaml:"env"`
}

// Schedule is a periodic call of an internal method.
type Schedule struct {
	Name   string   `yaml:"name"`
	Target string   `yaml:"target"`
	Method string   `yaml:"method"` // full gRPC method name
	Every  Duration `yaml:"every"`
}

// Duration is a time.Duration written as a Go duration string.
type Duration struct{ time.Duration }

// UnmarshalYAML parses "30s", "5m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

var (
	loadOnce sync.Once
	loaded   *Stack
	loadErr  error
)

// Load returns the embedded stack, parsed and checked once per process.
// The result is shared: do not modify it.
func Load() (*Stack, error) {
	loadOnce.Do(func() { loaded, loadErr = Parse(stackYAML) })
	return loaded, loadErr
}

// MustLoad is Load for callers that cannot go on without the stack; the
// embedded file is checked by the package tests, so it does not fail.
func MustLoad() *Stack {
	s, err := Load()
	if err != nil {
		panic(err)
	}
	return s
}

// Parse decodes a stack description strictly (unknown keys fail) and
// checks that every reference in it resolves.
func Parse(b []byte) (*Stack, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Stack
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("stack.yaml: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("stack.yaml: %w", err)
	}
	if err := checkWritten(b); err != nil {
		return nil, fmt.Errorf("stack.yaml: %w", err)
	}
	return &s, nil
}

// Deployable returns the deployable with this name.
func (s *Stack) Deployable(name string) (Deployable, bool) {
	i := slices.IndexFunc(s.Deployables, func(d Deployable) bool { return d.Name == name })
	if i < 0 {
		return Deployable{}, false
	}
	return s.Deployables[i], true
}

// Topic returns the topic with this name.
func (s *Stack) Topic(name string) (Topic, bool) {
	i := slices.IndexFunc(s.Topics, func(t Topic) bool { return t.Name == name })
	if i < 0 {
		return Topic{}, false
	}
	return s.Topics[i], true
}

// TopicFor returns the topic that carries the CloudEvent type.
func (s *Stack) TopicFor(eventType string) (Topic, bool) {
	i := slices.IndexFunc(s.Topics, func(t Topic) bool { return t.Event == eventType })
	if i < 0 {
		return Topic{}, false
	}
	return s.Topics[i], true
}

// PushTo returns the push subscriptions delivered to a function.
func (s *Stack) PushTo(function string) []Subscription {
	var out []Subscription
	for _, sub := range s.Subscriptions {
		if sub.Push == function {
			out = append(out, sub)
		}
	}
	return out
}

// OfKind returns the deployables of one kind, in file order.
func (s *Stack) OfKind(kind string) []Deployable {
	var out []Deployable
	for _, d := range s.Deployables {
		if d.Kind == kind {
			out = append(out, d)
		}
	}
	return out
}

func (s *Stack) check() error {
	if s.Project == "" {
		return fmt.Errorf("project is empty")
	}
	names := map[string]bool{}
	ports := map[int]string{}
	for _, d := range s.Deployables {
		switch {
		case d.Name == "":
			return fmt.Errorf("a deployable has no name")
		case names[d.Name]:
			return fmt.Errorf("deployable %q is listed twice", d.Name)
		case d.Kind != KindGRPC && d.Kind != KindFunction && d.Kind != KindHTTP:
			return fmt.Errorf("deployable %q: kind %q is not grpc, function or http", d.Name, d.Kind)
		case d.Ingress != IngressPublic && d.Ingress != IngressInternal:
			return fmt.Errorf("deployable %q: ingress %q is not public or internal", d.Name, d.Ingress)
		case d.MinInstances != 0:
			return fmt.Errorf("deployable %q: minInstances must be 0 (scale to zero)", d.Name)
		case d.MaxInstances < 1 || d.Concurrency < 1:
			return fmt.Errorf("deployable %q: maxInstances and concurrency must be at least 1", d.Name)
		case d.DevPort <= 0 || ports[d.DevPort] != "":
			return fmt.Errorf("deployable %q: devPort %d is missing or taken by %q", d.Name, d.DevPort, ports[d.DevPort])
		case d.Command == "" || d.CPU == "" || d.Memory == "" || d.Timeout.Duration <= 0:
			return fmt.Errorf("deployable %q: command, cpu, memory and timeout are required", d.Name)
		case !validName.MatchString(d.Name) || len(d.Name) > maxNameLen:
			return fmt.Errorf("deployable %q: name must be lowercase letters, digits and dashes, at most %d long (service account ids)", d.Name, maxNameLen)
		case d.Name == Scheduler || d.Name == s.CLI.Name:
			return fmt.Errorf("deployable %q: the name is taken by the scheduler or the cli", d.Name)
		case d.Timeout.Duration > time.Hour:
			return fmt.Errorf("deployable %q: timeout above 60m (Cloud Run's maximum)", d.Name)
		}
		names[d.Name] = true
		ports[d.DevPort] = d.Name
	}
	topics := map[string]bool{}
	events := map[string]bool{}
	for _, t := range s.Topics {
		if t.Name == "" || topics[t.Name] {
			return fmt.Errorf("topic %q is unnamed or listed twice", t.Name)
		}
		if t.Event != "" && events[t.Event] {
			return fmt.Errorf("event %q has two topics", t.Event)
		}
		topics[t.Name], events[t.Event] = true, true
	}
	buckets := map[string]bool{}
	for _, b := range s.Buckets {
		if b.Name == "" || buckets[b.Name] || !bucketEnv.MatchString(b.Env) {
			return fmt.Errorf("bucket %q: unnamed, listed twice, or env %q is not SHOPFN_…", b.Name, b.Env)
		}
		buckets[b.Name] = true
	}
	for _, d := range s.Deployables {
		for _, t := range d.Publishes {
			if !topics[t] {
				return fmt.Errorf("deployable %q publishes to unknown topic %q", d.Name, t)
			}
		}
		if len(d.FirestoreIndexes) > 0 && d.Database == "" {
			return fmt.Errorf("deployable %q has Firestore indexes but no database", d.Name)
		}
		for _, ix := range d.FirestoreIndexes {
			if err := ix.check(); err != nil {
				return fmt.Errorf("deployable %q: %w", d.Name, err)
			}
		}
		for _, b := range d.Buckets {
			if !buckets[b] {
				return fmt.Errorf("deployable %q uses unknown bucket %q", d.Name, b)
			}
		}
		for _, c := range d.Calls {
			if !names[c] {
				return fmt.Errorf("deployable %q calls unknown deployable %q", d.Name, c)
			}
		}
		for _, c := range d.Callers {
			if !names[c] && c != Scheduler {
				return fmt.Errorf("deployable %q lists unknown caller %q", d.Name, c)
			}
		}
		if err := s.checkDials(d); err != nil {
			return err
		}
	}
	subs := map[string]bool{}
	for _, sub := range s.Subscriptions {
		switch {
		case sub.Name == "" || subs[sub.Name]:
			return fmt.Errorf("subscription %q is unnamed or listed twice", sub.Name)
		case !topics[sub.Topic]:
			return fmt.Errorf("subscription %q: unknown topic %q", sub.Name, sub.Topic)
		case sub.AckDeadline.Duration < 10*time.Second || sub.AckDeadline.Duration > 600*time.Second:
			return fmt.Errorf("subscription %q: ackDeadline must be 10s to 600s (Pub/Sub's range)", sub.Name)
		}
		subs[sub.Name] = true
		if sub.Push == "" {
			continue
		}
		d, ok := s.Deployable(sub.Push)
		switch {
		case !ok || d.Kind != KindFunction:
			return fmt.Errorf("subscription %q pushes to %q, which is not a function", sub.Name, sub.Push)
		case sub.DeadLetterTopic == "" || !topics[sub.DeadLetterTopic]:
			return fmt.Errorf("push subscription %q needs a known deadLetterTopic", sub.Name)
		case sub.MaxDeliveryAttempts < 5 || sub.MaxDeliveryAttempts > 100:
			return fmt.Errorf("subscription %q: maxDeliveryAttempts must be 5 to 100 (Pub/Sub's range)", sub.Name)
		case sub.MinBackoff.Duration <= 0 || sub.MaxBackoff.Duration < sub.MinBackoff.Duration || sub.MaxBackoff.Duration > 600*time.Second:
			return fmt.Errorf("subscription %q: backoff must satisfy 0 < minBackoff <= maxBackoff <= 600s", sub.Name)
		}
	}
	if len(s.Schedules) > 0 && (s.CLI.Name == "" || s.CLI.Command == "" || !validName.MatchString(s.CLI.Name)) {
		return fmt.Errorf("cli: schedules run the cli image: name (lowercase) and command are required")
	}
	for _, sc := range s.Schedules {
		d, ok := s.Deployable(sc.Target)
		switch {
		case !ok:
			return fmt.Errorf("schedule %q targets unknown deployable %q", sc.Name, sc.Target)
		case !slices.Contains(d.Callers, Scheduler):
			return fmt.Errorf("schedule %q: %q does not list %q among its callers", sc.Name, sc.Target, Scheduler)
		case sc.Method == "" || sc.Every.Duration < time.Minute:
			return fmt.Errorf("schedule %q: needs a method and every >= 1m (Cloud Scheduler's granularity)", sc.Name)
		}
	}
	return nil
}

// Names of deployables become Cloud Run services, Knative Services and
// service account ids ("shopfn-push-" + name must fit in 30 characters).
var validName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

const maxNameLen = 18

var bucketEnv = regexp.MustCompile(`^SHOPFN_[A-Z0-9_]+$`)

// checkDials checks that d's calls and uses agree with the callees: an
// internal callee lists d among its callers (Cloud Run grants run.invoker
// from that list), and every caller calls. Uses may name internal
// deployables too: d then reaches them (run.invoker, network) with its
// callers' own tokens, never a service identity of its own — the gateway
// forwarding a customer's GetStock, say.
func (s *Stack) checkDials(d Deployable) error {
	for _, c := range d.Calls {
		callee, _ := s.Deployable(c)
		switch {
		case c == d.Name:
			return fmt.Errorf("deployable %q calls itself", d.Name)
		case callee.Ingress == IngressInternal && !slices.Contains(callee.Callers, d.Name):
			return fmt.Errorf("deployable %q calls internal %q, which does not list it among its callers", d.Name, c)
		}
	}
	for _, c := range d.Callers {
		if c == Scheduler {
			continue
		}
		caller, _ := s.Deployable(c)
		if !slices.Contains(caller.Calls, d.Name) {
			return fmt.Errorf("deployable %q lists caller %q, which does not list it in calls", d.Name, c)
		}
	}
	for _, u := range d.Uses {
		_, ok := s.Deployable(u)
		switch {
		case !ok:
			return fmt.Errorf("deployable %q uses unknown deployable %q", d.Name, u)
		case u == d.Name || slices.Contains(d.Calls, u):
			return fmt.Errorf("deployable %q: uses %q repeats itself or calls", d.Name, u)
		}
	}
	return nil
}

// Durations as Terraform reads them from the raw YAML: whole seconds or
// minutes, and schedules in whole minutes dividing an hour or whole hours
// dividing a day (so that they become a cron line).
var (
	secondsOrMinutes = regexp.MustCompile(`^[1-9][0-9]*[sm]$`)
	minutesOrHours   = regexp.MustCompile(`^([1-9][0-9]*)([mh])$`)
)

// checkWritten checks how the durations that Terraform parses are written.
func checkWritten(b []byte) error {
	var raw struct {
		Deployables []struct {
			Name    string `yaml:"name"`
			Timeout string `yaml:"timeout"`
		} `yaml:"deployables"`
		Subscriptions []struct {
			Name        string `yaml:"name"`
			AckDeadline string `yaml:"ackDeadline"`
			MinBackoff  string `yaml:"minBackoff"`
			MaxBackoff  string `yaml:"maxBackoff"`
		} `yaml:"subscriptions"`
		Schedules []struct {
			Name  string `yaml:"name"`
			Every string `yaml:"every"`
		} `yaml:"schedules"`
	}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, d := range raw.Deployables {
		if !secondsOrMinutes.MatchString(d.Timeout) {
			return fmt.Errorf("deployable %q: timeout %q must be whole seconds or minutes (\"30s\", \"5m\")", d.Name, d.Timeout)
		}
	}
	for _, sub := range raw.Subscriptions {
		for _, v := range []string{sub.AckDeadline, sub.MinBackoff, sub.MaxBackoff} {
			if v != "" && !secondsOrMinutes.MatchString(v) {
				return fmt.Errorf("subscription %q: %q must be whole seconds or minutes (\"10s\", \"1m\")", sub.Name, v)
			}
		}
	}
	for _, sc := range raw.Schedules {
		m := minutesOrHours.FindStringSubmatch(sc.Every)
		if m == nil {
			return fmt.Errorf("schedule %q: every %q must be whole minutes or hours (\"5m\", \"1h\")", sc.Name, sc.Every)
		}
		n, _ := strconv.Atoi(m[1])
		if per := map[string]int{"m": 60, "h": 24}[m[2]]; n >= per || per%n != 0 {
			return fmt.Errorf("schedule %q: every %q must divide an hour (minutes) or a day (hours) to be a cron line", sc.Name, sc.Every)
		}
	}
	return nil
}
