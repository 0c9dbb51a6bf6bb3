package benchkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Pair is a reference and a target, built and prepared for one interleaved
// run: Deployables[0] is the reference, Deployables[1] the target.
type Pair struct {
	Deployables [2]*Deployable
	work        string
}

// Labels names the two roles in reports, in Deployables order.
var Labels = [2]string{"ref", "target"}

// SetupPair builds and prepares ref and target in a new temporary directory
// named after tool; Close removes it.
func SetupPair(ctx context.Context, tool string, ref, target Target) (*Pair, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "shopfn-"+tool+"-")
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	p := &Pair{work: work}
	for i, t := range [2]Target{ref, target} {
		if p.Deployables[i], err = Setup(ctx, root, filepath.Join(work, Labels[i]), t); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// Close removes the pair's temporary directory.
func (p *Pair) Close() error { return os.RemoveAll(p.work) }

// Order returns the order in which round r runs the two roles (indexes into
// Deployables). It alternates, so neither always runs right after the
// other's teardown.
func Order(r int) [2]int {
	if r&1 == 0 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}
