package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binary is a built deployable.
type Binary struct {
	// Path is the executable's absolute path.
	Path string
	// Size is the executable's size in bytes.
	Size int64
}

// ModuleRoot returns the directory of the main module, as `go env GOMOD`
// reports it for the current working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod), nil
}

// imageTags are the build tags of the container images (.ko.yaml's
// defaultFlags): the benchmarks measure what is deployed. More can be added
// with $SHOPFN_BENCH_TAGS (comma-separated), e.g. pprof.
const imageTags = "disable_grpc_modules"

// Build compiles pkg, relative to moduleRoot, into the executable out, the
// way a container image is built: CGO_ENABLED=0, -trimpath and the images'
// build tags.
func Build(ctx context.Context, moduleRoot, pkg, out string) (Binary, error) {
	tags := imageTags
	if extra := os.Getenv("SHOPFN_BENCH_TAGS"); extra != "" {
		tags += "," + extra
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", tags, "-o", out, pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return Binary{}, fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	fi, err := os.Stat(out)
	if err != nil {
		return Binary{}, fmt.Errorf("stat built binary: %w", err)
	}
	return Binary{Path: out, Size: fi.Size()}, nil
}
