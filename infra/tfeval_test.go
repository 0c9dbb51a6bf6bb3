package infra

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.yaml.in/yaml/v3"
)

// This file is a small Terraform evaluator for the tests: it parses
// infra/terraform, evaluates the locals (stack.yaml through yamldecode),
// expands every resource's for_each and dynamic blocks, and gives each
// resource attribute a value naming itself ("google_x.y[key].attr"), so the
// tests can assert what each resource instance would be given without the
// provider. It knows only the functions our .tf files use: a function it
// does not know fails the test, as would a reference to an undeclared name.

const tfDir = "terraform"

// Values of the test deployment.
const (
	testProject       = "test-project"
	testProjectNumber = "123456789"
	testPublicKeys    = "test-public-key"
)

type tfModel struct {
	files     map[string]*hclsyntax.Body
	vars      map[string]cty.Value
	locals    map[string]hcl.Expression
	resources []*tfResource
	ctx       *hcl.EvalContext
}

type tfResource struct {
	typ, name string
	block     *hclsyntax.Block
	keys      []string // for_each keys; nil without for_each
	count     int      // -1 without count
}

// evBlock is an evaluated block: its attributes and nested blocks, with
// dynamic blocks expanded.
type evBlock struct {
	attrs  map[string]cty.Value
	blocks map[string][]*evBlock
}

// block returns the only nested block called name, or nil.
func (b *evBlock) block(name string) *evBlock {
	if b == nil || len(b.blocks[name]) != 1 {
		return nil
	}
	return b.blocks[name][0]
}

// str returns a string attribute ("" when absent or null).
func (b *evBlock) str(name string) string {
	if b == nil {
		return ""
	}
	v, ok := b.attrs[name]
	if !ok || v.IsNull() || !v.IsKnown() {
		return ""
	}
	if v.Type() == cty.String {
		return v.AsString()
	}
	if v.Type() == cty.Bool {
		return fmt.Sprint(v.True())
	}
	if v.Type() == cty.Number {
		return v.AsBigFloat().Text('f', -1)
	}
	return v.GoString()
}

func parseTerraform(t *testing.T) map[string]*hclsyntax.Body {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(tfDir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s: %v", tfDir, err)
	}
	p := hclparse.NewParser()
	files := map[string]*hclsyntax.Body{}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %v", path, diags)
		}
		files[path] = f.Body.(*hclsyntax.Body)
	}
	return files
}

// loadTerraform evaluates infra/terraform with the variables' defaults,
// overridden by vars.
func loadTerraform(t *testing.T, vars map[string]cty.Value) *tfModel {
	t.Helper()
	m := &tfModel{files: parseTerraform(t), vars: map[string]cty.Value{}, locals: map[string]hcl.Expression{}}
	for _, path := range sortedKeys(m.files) {
		for _, b := range m.files[path].Blocks {
			switch b.Type {
			case "variable":
				v := cty.NullVal(cty.DynamicPseudoType)
				if def, ok := b.Body.Attributes["default"]; ok {
					var diags hcl.Diagnostics
					if v, diags = def.Expr.Value(nil); diags.HasErrors() {
						t.Fatalf("variable %s default: %v", b.Labels[0], diags)
					}
				}
				m.vars[b.Labels[0]] = v
			case "locals":
				for name, a := range b.Body.Attributes {
					m.locals[name] = a.Expr
				}
			case "resource":
				m.resources = append(m.resources, &tfResource{typ: b.Labels[0], name: b.Labels[1], block: b, count: -1})
			}
		}
	}
	for k, v := range vars {
		if _, ok := m.vars[k]; !ok {
			t.Fatalf("test sets undeclared variable %q", k)
		}
		m.vars[k] = v
	}

	abs, err := filepath.Abs(tfDir)
	if err != nil {
		t.Fatal(err)
	}
	m.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":  cty.ObjectVal(m.vars),
			"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(abs)}),
			"data": cty.ObjectVal(map[string]cty.Value{"google_project": cty.ObjectVal(map[string]cty.Value{
				"this": cty.ObjectVal(map[string]cty.Value{"number": cty.StringVal(testProjectNumber), "project_id": cty.StringVal(testProject)}),
			})}),
		},
		Functions: tfFunctions(),
	}
	for _, r := range m.resources {
		m.ctx.Variables[r.typ] = cty.DynamicVal
	}

	// Locals first with the resources unknown, then the instances of each
	// resource, then the locals again with the resources known.
	m.evalLocals(t, false)
	for _, r := range m.resources {
		body := r.block.Body
		if fe, ok := body.Attributes["for_each"]; ok {
			v, diags := fe.Expr.Value(m.ctx)
			if diags.HasErrors() || !v.IsKnown() {
				t.Fatalf("%s.%s: for_each: %v (known: %v)", r.typ, r.name, diags, v.IsKnown())
			}
			r.keys = []string{}
			for it := v.ElementIterator(); it.Next(); {
				k, _ := it.Element()
				r.keys = append(r.keys, k.AsString())
			}
		}
		if c, ok := body.Attributes["count"]; ok {
			v, diags := c.Expr.Value(m.ctx)
			if diags.HasErrors() {
				t.Fatalf("%s.%s: count: %v", r.typ, r.name, diags)
			}
			n, _ := v.AsBigFloat().Int64()
			r.count = int(n)
		}
	}
	m.setResources(t)
	m.evalLocals(t, true)
	return m
}

func (m *tfModel) evalLocals(t *testing.T, final bool) {
	t.Helper()
	vals := map[string]cty.Value{}
	for name := range m.locals {
		vals[name] = cty.DynamicVal
	}
	var errs map[string]hcl.Diagnostics
	for range len(m.locals) + 1 {
		errs = map[string]hcl.Diagnostics{}
		m.ctx.Variables["local"] = cty.ObjectVal(vals)
		changed := false
		for name, expr := range m.locals {
			v, diags := expr.Value(m.ctx)
			if diags.HasErrors() {
				errs[name] = diags
				continue
			}
			if !v.RawEquals(vals[name]) {
				vals[name], changed = v, true
			}
		}
		if !changed {
			break
		}
	}
	m.ctx.Variables["local"] = cty.ObjectVal(vals)
	if final {
		for name, diags := range errs {
			t.Errorf("local.%s: %v", name, diags)
		}
	}
}

// setResources gives every resource instance a value whose attributes
// (arguments and computed attributes of the provider schema) name
// themselves.
func (m *tfModel) setResources(t *testing.T) {
	t.Helper()
	var ps providerSchema
	loadJSON(t, "google-provider.json", &ps)
	byType := map[string]map[string]cty.Value{}
	for _, r := range m.resources {
		s := ps.Resources[r.typ]
		if s == nil {
			t.Fatalf("resource type %s is not in the provider schema", r.typ)
		}
		synth := func(addr string) cty.Value {
			attrs := map[string]cty.Value{}
			for a := range s.Arguments {
				attrs[a] = cty.StringVal(addr + "." + a)
			}
			for a := range s.Attributes {
				attrs[a] = cty.StringVal(addr + "." + a)
			}
			return cty.ObjectVal(attrs)
		}
		var v cty.Value
		switch {
		case r.keys != nil:
			inst := map[string]cty.Value{}
			for _, k := range r.keys {
				inst[k] = synth(fmt.Sprintf("%s.%s[%s]", r.typ, r.name, k))
			}
			v = cty.ObjectVal(inst)
		case r.count >= 0:
			var inst []cty.Value
			for i := range r.count {
				inst = append(inst, synth(fmt.Sprintf("%s.%s[%d]", r.typ, r.name, i)))
			}
			v = cty.TupleVal(inst)
		default:
			v = synth(r.typ + "." + r.name)
		}
		if byType[r.typ] == nil {
			byType[r.typ] = map[string]cty.Value{}
		}
		byType[r.typ][r.name] = v
	}
	for typ, names := range byType {
		m.ctx.Variables[typ] = cty.ObjectVal(names)
	}
}

func (m *tfModel) resource(t *testing.T, typ, name string) *tfResource {
	t.Helper()
	for _, r := range m.resources {
		if r.typ == typ && r.name == name {
			return r
		}
	}
	t.Fatalf("no resource %s.%s in %s", typ, name, tfDir)
	return nil
}

// ofType returns the resources of one type.
func (m *tfModel) ofType(typ string) []*tfResource {
	var out []*tfResource
	for _, r := range m.resources {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

// instances evaluates every instance of r, keyed by its for_each key ("" for
// a single instance, the index for count).
func (m *tfModel) instances(t *testing.T, r *tfResource) map[string]*evBlock {
	t.Helper()
	out := map[string]*evBlock{}
	eval := func(key string, each map[string]cty.Value) {
		ctx := m.ctx.NewChild()
		ctx.Variables = each
		b, diags := expandBody(ctx, r.block.Body, true)
		if diags.HasErrors() {
			t.Errorf("%s.%s[%s]: %v", r.typ, r.name, key, diags)
		}
		out[key] = b
	}
	switch {
	case r.keys != nil:
		fe, _ := r.block.Body.Attributes["for_each"].Expr.Value(m.ctx)
		for it := fe.ElementIterator(); it.Next(); {
			k, v := it.Element()
			eval(k.AsString(), map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})})
		}
	case r.count >= 0:
		for i := range r.count {
			eval(fmt.Sprint(i), map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(int64(i))})})
		}
	default:
		eval("", nil)
	}
	return out
}

// expandBody evaluates a block body, expanding dynamic blocks.
func expandBody(ctx *hcl.EvalContext, body *hclsyntax.Body, top bool) (*evBlock, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := &evBlock{attrs: map[string]cty.Value{}, blocks: map[string][]*evBlock{}}
	for name, a := range body.Attributes {
		if top && slices.Contains([]string{"for_each", "count", "depends_on", "provider"}, name) {
			continue
		}
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		out.attrs[name] = v
	}
	for _, b := range body.Blocks {
		switch {
		case top && slices.Contains([]string{"lifecycle", "provisioner", "connection"}, b.Type):
		case b.Type == "dynamic":
			name, iter := b.Labels[0], b.Labels[0]
			if it, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(it.Expr)
			}
			var content *hclsyntax.Body
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					content = c.Body
				}
			}
			fe, d := b.Body.Attributes["for_each"].Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() || content == nil {
				continue
			}
			if !fe.IsWhollyKnown() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "dynamic " + name + ": for_each is unknown"})
				continue
			}
			for it := fe.ElementIterator(); it.Next(); {
				k, v := it.Element()
				child := ctx.NewChild()
				child.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
				eb, d := expandBody(child, content, false)
				diags = append(diags, d...)
				out.blocks[name] = append(out.blocks[name], eb)
			}
		default:
			eb, d := expandBody(ctx, b.Body, false)
			diags = append(diags, d...)
			out.blocks[b.Type] = append(out.blocks[b.Type], eb)
		}
	}
	return out, diags
}

// tfFunctions are the Terraform functions our files use.
func tfFunctions() map[string]function.Function {
	str := func(name string, f func(string) (cty.Value, error)) function.Function {
		return function.New(&function.Spec{
			Params: []function.Parameter{{Name: name, Type: cty.String}},
			Type: func(args []cty.Value) (cty.Type, error) {
				if !args[0].IsKnown() {
					return cty.DynamicPseudoType, nil
				}
				v, err := f(args[0].AsString())
				return v.Type(), err
			},
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) { return f(args[0].AsString()) },
		})
	}
	bools := func(all bool) function.Function {
		return function.New(&function.Spec{
			Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				for it := args[0].ElementIterator(); it.Next(); {
					_, v := it.Element()
					if v.True() != all {
						return cty.BoolVal(!all), nil
					}
				}
				return cty.BoolVal(all), nil
			},
		})
	}
	return map[string]function.Function{
		"alltrue": bools(true),
		"anytrue": bools(false),
		"base64encode": str("s", func(s string) (cty.Value, error) {
			return cty.StringVal(base64.StdEncoding.EncodeToString([]byte(s))), nil
		}),
		"can":      tryfunc.CanFunc,
		"coalesce": stdlib.CoalesceFunc,
		"concat":   stdlib.ConcatFunc,
		"contains": stdlib.ContainsFunc,
		"endswith": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "s", Type: cty.String}, {Name: "suffix", Type: cty.String}},
			Type:   function.StaticReturnType(cty.Bool),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.BoolVal(strings.HasSuffix(args[0].AsString(), args[1].AsString())), nil
			},
		}),
		"file": str("path", func(p string) (cty.Value, error) {
			b, err := os.ReadFile(p)
			return cty.StringVal(string(b)), err
		}),
		"flatten":    stdlib.FlattenFunc,
		"join":       stdlib.JoinFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"keys":       stdlib.KeysFunc,
		"length":     stdlib.LengthFunc,
		"lookup":     stdlib.LookupFunc,
		"merge":      stdlib.MergeFunc,
		"regex":      stdlib.RegexFunc,
		"replace":    stdlib.ReplaceFunc,
		"split":      stdlib.SplitFunc,
		"tonumber": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
			Type:   function.StaticReturnType(cty.Number),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return convert.Convert(args[0], cty.Number)
			},
		}),
		"toset": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType}},
			Type: func(args []cty.Value) (cty.Type, error) {
				var tys []cty.Type
				for it := args[0].ElementIterator(); it.Next(); {
					_, v := it.Element()
					tys = append(tys, v.Type())
				}
				if len(tys) == 0 {
					return cty.Set(cty.String), nil
				}
				ety, _ := convert.UnifyUnsafe(tys)
				if ety == cty.NilType {
					return cty.NilType, fmt.Errorf("toset: elements of different types")
				}
				return cty.Set(ety), nil
			},
			Impl: func(args []cty.Value, ret cty.Type) (cty.Value, error) { return convert.Convert(args[0], ret) },
		}),
		"trimsuffix": stdlib.TrimSuffixFunc,
		"try":        tryfunc.TryFunc,
		"upper":      stdlib.UpperFunc,
		"yamldecode": str("src", yamlToCty),
	}
}

// yamlToCty decodes YAML the way Terraform's yamldecode does for our file:
// mappings become objects, sequences tuples.
func yamlToCty(src string) (cty.Value, error) {
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return cty.NilVal, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return cty.NilVal, err
	}
	ty, err := ctyjson.ImpliedType(j)
	if err != nil {
		return cty.NilVal, err
	}
	return ctyjson.Unmarshal(j, ty)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
