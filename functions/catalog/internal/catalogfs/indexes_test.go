package catalogfs_test

import (
	"slices"
	"testing"

	"github.com/shopfn/shopfn/functions/catalog/internal/catalogfs"
	"github.com/shopfn/shopfn/infra"
)

// TestStackDeclaresTheIndexes holds infra/stack.yaml to the composite
// indexes List needs: the emulator runs any query without them, so only
// this test stands between a missing index and a listing that fails in the
// cloud with FailedPrecondition.
func TestStackDeclaresTheIndexes(t *testing.T) {
	d, ok := infra.MustLoad().Deployable("catalog")
	if !ok {
		t.Fatal("infra/stack.yaml has no catalog deployable")
	}
	var declared [][]string
	for _, ix := range d.FirestoreIndexes {
		if ix.Collection == "products" {
			declared = append(declared, ix.Fields)
		}
	}
	for _, want := range catalogfs.CompositeIndexes {
		if !slices.ContainsFunc(declared, func(got []string) bool { return slices.Equal(got, want) }) {
			t.Errorf("infra/stack.yaml declares no products index %q for the catalog (it has %q)", want, declared)
		}
	}
	if len(declared) != len(catalogfs.CompositeIndexes) {
		t.Errorf("infra/stack.yaml declares %d products indexes, catalogfs needs %d: remove the unused ones (each costs writes)", len(declared), len(catalogfs.CompositeIndexes))
	}
}
