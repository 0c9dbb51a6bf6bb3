package infra

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const skaffoldFile = "../skaffold.yaml"

// readSkaffold decodes every document of skaffold.yaml.
func readSkaffold(t *testing.T) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(skaffoldFile)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("skaffold.yaml: %v", err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// TestSkaffoldMatchesSchema checks skaffold.yaml key by key against the
// skaffold/v4beta14 schema (infra/schemas/skaffold.json): unknown keys,
// wrong types, missing required keys, two builders on one artifact and
// values outside an enum all fail.
func TestSkaffoldMatchesSchema(t *testing.T) {
	var sc skaffoldSchema
	loadJSON(t, "skaffold.json", &sc)
	docs := readSkaffold(t)
	if len(docs) == 0 {
		t.Fatal("skaffold.yaml is empty")
	}
	for i, d := range docs {
		if d["apiVersion"] != sc.APIVersion || d["kind"] != sc.Kind {
			t.Errorf("document %d: apiVersion %v kind %v, want %s %s", i, d["apiVersion"], d["kind"], sc.APIVersion, sc.Kind)
		}
		for _, e := range checkSkaffold(&sc, "#"+sc.Root, d, "") {
			t.Errorf("skaffold.yaml document %d: %s", i, e)
		}
	}
}

// checkSkaffold checks value v at path against the type string typ.
func checkSkaffold(sc *skaffoldSchema, typ string, v any, path string) []string {
	if alts := strings.Split(typ, "|"); len(alts) > 1 && !strings.HasPrefix(typ, "[]") && !strings.HasPrefix(typ, "map[") {
		for _, alt := range alts {
			if len(checkSkaffold(sc, alt, v, path)) == 0 {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s: %v is none of %s", path, v, typ)}
	}
	bad := func() []string { return []string{fmt.Sprintf("%s: %v (%T) is not %s", path, v, v, typ)} }
	switch {
	case typ == "any":
		return nil
	case typ == "string":
		if _, ok := v.(string); !ok {
			return bad()
		}
	case typ == "boolean":
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case typ == "integer":
		if _, ok := v.(int); !ok {
			return bad()
		}
	case strings.HasPrefix(typ, "[]"):
		list, ok := v.([]any)
		if !ok {
			return bad()
		}
		var errs []string
		for i, e := range list {
			errs = append(errs, checkSkaffold(sc, typ[2:], e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case strings.HasPrefix(typ, "map[string]"):
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		var errs []string
		for k, e := range m {
			errs = append(errs, checkSkaffold(sc, strings.TrimPrefix(typ, "map[string]"), e, path+"."+k)...)
		}
		return errs
	case strings.HasPrefix(typ, "#"):
		def, ok := sc.Definitions[typ[1:]]
		if !ok {
			return []string{fmt.Sprintf("%s: schema has no definition %s", path, typ)}
		}
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		var errs []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			kt, ok := def.Keys[k]
			if !ok {
				errs = append(errs, fmt.Sprintf("%s: unknown key %q (%s)", path, k, typ[1:]))
				continue
			}
			if enum, ok := def.Enums[k]; ok && !slices.Contains(enum, fmt.Sprint(m[k])) {
				errs = append(errs, fmt.Sprintf("%s.%s: %v not in %v", path, k, m[k], enum))
			}
			errs = append(errs, checkSkaffold(sc, kt, m[k], path+"."+k)...)
		}
		for _, k := range def.Required {
			if _, ok := m[k]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required key %q (%s)", path, k, typ[1:]))
			}
		}
		var set []string
		for _, k := range def.OneOf {
			if _, ok := m[k]; ok {
				set = append(set, k)
			}
		}
		if len(set) > 1 {
			errs = append(errs, fmt.Sprintf("%s: at most one of %v, got %v", path, def.OneOf, set))
		}
		return errs
	default:
		return []string{fmt.Sprintf("%s: unknown schema type %q", path, typ)}
	}
	return nil
}

// TestSkaffoldFollowsStack: one ko artifact per deployable (and the cli)
// building its main package, every image the manifests use is built, the
// dev manifests are infra/knative/dev, and the cloudrun profile deploys
// infra/knative/cloudrun with skaffold's Cloud Run deployer in the stack's
// region.
func TestSkaffoldFollowsStack(t *testing.T) {
	s := mustStack(t)
	doc := readSkaffold(t)[0]
	get := func(v any, path ...string) any {
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		return v
	}
	built := map[string]string{}
	arts, _ := get(doc, "build", "artifacts").([]any)
	for _, a := range arts {
		img, _ := get(a, "image").(string)
		main, _ := get(a, "ko", "main").(string)
		if _, dup := built[img]; dup {
			t.Errorf("artifact %s is listed twice", img)
		}
		built[img] = main
	}
	want := map[string]string{s.CLI.Name: s.CLI.Command}
	for _, d := range s.Deployables {
		want[d.Name] = d.Command
	}
	if !maps.Equal(built, want) {
		t.Errorf("skaffold artifacts (image: ko main) = %v, want %v", built, want)
	}

	_, dev := decodeDir(t, knativeDir+"/dev")
	_, svcs := decodeDir(t, knativeDir+"/services")
	used := map[string]bool{}
	for _, svc := range svcs.services {
		for _, c := range svc.Spec.Template.Spec.Containers {
			used[c.Image] = true
		}
	}
	for _, cj := range dev.cronJobs {
		for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
			used[c.Image] = true
		}
	}
	for img := range used {
		if _, ok := built[img]; !ok {
			t.Errorf("the manifests use image %q, which skaffold does not build", img)
		}
	}
	for img := range built {
		if !used[img] {
			t.Errorf("skaffold builds %q, which no manifest uses", img)
		}
	}

	if p := get(doc, "manifests", "kustomize", "paths"); fmt.Sprint(p) != "[infra/knative/dev]" {
		t.Errorf("manifests.kustomize.paths = %v, want [infra/knative/dev]", p)
	}
	var cloudrun any
	profiles, _ := doc["profiles"].([]any)
	for _, p := range profiles {
		if get(p, "name") == "cloudrun" {
			cloudrun = p
		}
	}
	switch {
	case cloudrun == nil:
		t.Errorf("no cloudrun profile")
	case fmt.Sprint(get(cloudrun, "manifests", "kustomize", "paths")) != "[infra/knative/cloudrun]":
		t.Errorf("cloudrun profile manifests = %v, want [infra/knative/cloudrun]", get(cloudrun, "manifests", "kustomize", "paths"))
	case get(cloudrun, "deploy", "cloudrun", "region") != s.Region:
		t.Errorf("cloudrun profile region = %v, want %s", get(cloudrun, "deploy", "cloudrun", "region"), s.Region)
	}
}
