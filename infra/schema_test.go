package infra

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The schemas are copied into infra/schemas (see its README for where they
// come from), so these tests need nothing outside the repository.
const schemaDir = "schemas"

// tfBlock is one level of the provider schema: a resource or a nested block.
type tfBlock struct {
	Arguments  map[string]tfArgument `json:"arguments"`
	Attributes map[string]any        `json:"attributes"`
	Blocks     map[string]*tfNested  `json:"blocks"`
}

type tfArgument struct {
	Required bool `json:"required"`
}

type tfNested struct {
	tfBlock
	Required bool `json:"required"`
	MinItems int  `json:"min_items"`
	MaxItems *int `json:"max_items"`
}

type providerSchema struct {
	ProviderVersion string              `json:"provider_version"`
	Resources       map[string]*tfBlock `json:"resources"`
	TerraformMeta   struct {
		Arguments []string `json:"arguments"`
		Blocks    []string `json:"blocks"`
	} `json:"terraform_meta"`
}

type skaffoldSchema struct {
	APIVersion  string                 `json:"api_version"`
	Kind        string                 `json:"kind"`
	Root        string                 `json:"root"`
	APIVersions []string               `json:"api_versions_oldest_to_newest"`
	Definitions map[string]skaffoldDef `json:"definitions"`
}

type skaffoldDef struct {
	Keys     map[string]string   `json:"keys"`
	Required []string            `json:"required"`
	OneOf    []string            `json:"one_of"`
	Enums    map[string][]string `json:"enums"`
}

func loadJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(schemaDir, name))
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}
