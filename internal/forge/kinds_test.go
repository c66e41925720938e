package forge_test

import (
	"slices"
	"testing"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/forge"
)

// TestKindsAreTheProjectsForges: a project may name exactly the forges
// this package speaks (core cannot import it, so it keeps its own list).
func TestKindsAreTheProjectsForges(t *testing.T) {
	var kinds []string
	for _, k := range forge.Kinds {
		kinds = append(kinds, string(k))
	}
	if !slices.Equal(kinds, core.ForgeKinds) {
		t.Errorf("forge.Kinds = %v, core.ForgeKinds = %v", kinds, core.ForgeKinds)
	}
}
