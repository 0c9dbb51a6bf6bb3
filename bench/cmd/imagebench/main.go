// Command imagebench measures the imaging function's pipeline — one JPEG
// photo to the thumbnail, medium and watermarked variants — against
// vipsthumbnail making one 800-pixel variant of the same photo, both as
// whole processes, in one interleaved run.
//
// Usage:
//
//	CGO_ENABLED=0 go run ./bench/cmd/imagebench [-pairs 15] [-steps 10] [-size 4000x3000]
//
// It writes a deterministic photo-like test image (gradients, shaded shapes
// with hard edges, fine texture and sensor-like noise; JPEG quality 90,
// 4:2:0) to a temporary directory and builds the helper
// functions/imaging/internal/cmd/makevariants there (CGO_ENABLED=0
// -trimpath, as the image is built), then runs pairs: each pair runs
// `vipsthumbnail photo.jpg -s 800` and `makevariants -in photo.jpg -out DIR`
// (read the photo, one variants.Make call, write the three files),
// alternating which goes first from one pair to the next. The clock runs
// from just before exec to the process's exit. It prints each pair, the
// medians, the median of the per-pair ratios (ours/vips) and their spread.
// With -steps N the helper also times Make's steps in-process, N times.
//
// Run it from the module (it calls go build).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebench:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	pairs, warmup, steps int
	width, height        int
	vips                 string
	keep                 string
}

func parseFlags(args []string) (config, error) {
	var c config
	var size string
	fs := flag.NewFlagSet("imagebench", flag.ContinueOnError)
	fs.IntVar(&c.pairs, "pairs", 15, "measured pairs; each runs vipsthumbnail and ours once")
	fs.IntVar(&c.warmup, "warmup", 2, "pairs run first and discarded")
	fs.IntVar(&c.steps, "steps", 0, "also time Make's steps in-process this many times")
	fs.StringVar(&size, "size", "4000x3000", "test photo size, WxH")
	fs.StringVar(&c.vips, "vips", "/usr/bin/vipsthumbnail", "vipsthumbnail binary")
	fs.StringVar(&c.keep, "keep", "", "write the photo and outputs to this directory and keep them")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if _, err := fmt.Sscanf(size, "%dx%d", &c.width, &c.height); err != nil || c.width < 16 || c.height < 16 {
		return c, fmt.Errorf("bad -size %q", size)
	}
	if c.pairs < 1 {
		return c, errors.New("-pairs must be at least 1")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	dir := c.keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "imagebench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	photo := filepath.Join(dir, "photo.jpg")
	data, err := makePhoto(c.width, c.height)
	if err != nil {
		return err
	}
	if err := os.WriteFile(photo, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "photo: %d×%d, %d bytes (quality 90, 4:2:0)\n", c.width, c.height, len(data))

	helper := filepath.Join(dir, "makevariants")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", helper, helperPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w: %s", helperPkg, err, out)
	}
	if c.steps > 0 {
		cmd := exec.CommandContext(ctx, helper, "-in", photo, "-steps", fmt.Sprint(c.steps))
		cmd.Stdout, cmd.Stderr = stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("steps: %w", err)
		}
	}
	vips := []string{c.vips, photo, "-s", "800", "-o", filepath.Join(dir, "vips-%s.jpg")}
	ours := []string{helper, "-in", photo, "-out", dir}
	return compare(ctx, stdout, c, vips, ours)
}

// helperPkg is the process measured against vipsthumbnail.
const helperPkg = "github.com/shopfn/shopfn/functions/imaging/internal/cmd/makevariants"

// timing is one process run: wall time from exec to exit, and the CPU
// time (user + system) it used, which shared cores inflate less.
type timing struct {
	wall, cpu time.Duration
}

// runTimed runs argv once and times it.
func runTimed(ctx context.Context, argv []string) (timing, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return timing{}, fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(stderr.String()))
	}
	return timing{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

// compare runs the two commands in interleaved pairs and prints the table.
func compare(ctx context.Context, stdout io.Writer, c config, vips, ours []string) error {
	var vWall, oWall, vCPU, oCPU, ratios, cpuRatios []float64
	fmt.Fprintf(stdout, "\n%-5s %10s %10s %8s   %10s %10s %8s\n", "pair", "vips ms", "ours ms", "ratio", "vips cpu", "ours cpu", "ratio")
	for i := range c.warmup + c.pairs {
		// Alternate the order so that neither always runs second.
		first, second := vips, ours
		if i%2 == 1 {
			first, second = ours, vips
		}
		a, err := runTimed(ctx, first)
		if err != nil {
			return err
		}
		b, err := runTimed(ctx, second)
		if err != nil {
			return err
		}
		if i%2 == 1 {
			a, b = b, a
		}
		if i < c.warmup {
			continue
		}
		v, o := ms(a.wall), ms(b.wall)
		vc, oc := ms(a.cpu), ms(b.cpu)
		vWall, oWall, ratios = append(vWall, v), append(oWall, o), append(ratios, o/v)
		vCPU, oCPU, cpuRatios = append(vCPU, vc), append(oCPU, oc), append(cpuRatios, oc/vc)
		fmt.Fprintf(stdout, "%-5d %10.1f %10.1f %8.3f   %10.1f %10.1f %8.3f\n", i-c.warmup+1, v, o, o/v, vc, oc, oc/vc)
	}
	slices.Sort(ratios)
	fmt.Fprintf(stdout, "\nwall, median: vips %.1f ms (one 800 px variant), ours %.1f ms (three variants)\n", median(vWall), median(oWall))
	fmt.Fprintf(stdout, "wall, median of per-pair ratios (ours/vips): %.3f\n", median(ratios))
	fmt.Fprintf(stdout, "wall, ratio of medians: %.3f\n", median(oWall)/median(vWall))
	fmt.Fprintf(stdout, "wall, spread of per-pair ratios: min %.3f, p25 %.3f, p75 %.3f, max %.3f\n",
		ratios[0], quantile(ratios, 0.25), quantile(ratios, 0.75), ratios[len(ratios)-1])
	fmt.Fprintf(stdout, "cpu, median: vips %.1f ms, ours %.1f ms; median of per-pair ratios %.3f\n", median(vCPU), median(oCPU), median(cpuRatios))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs (not modified).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return quantile(s, 0.5)
}

// quantile interpolates the q-quantile of sorted xs.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	p := q * float64(len(sorted)-1)
	i := int(p)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (p-float64(i))*(sorted[i+1]-sorted[i])
}

// makePhoto returns a deterministic photo-like w×h JPEG (quality 90, 4:2:0):
// smooth lighting gradients, shaded discs and boxes with hard edges,
// multi-scale texture everywhere (value noise with octaves from 256 to 2
// pixels, like foliage, fabric or plaster) and sensor noise (σ ≈ 4.5 levels).
// At 4000×3000 it is about 3.5 MB, 2.4 bits per pixel: what a phone camera
// writes at this quality, and heavier to entropy-decode than a synthetic
// image of flat shapes.
func makePhoto(w, h int) ([]byte, error) {
	rng := rand.New(rand.NewPCG(2024, 11))
	texture := valueNoise(rng, w, h, []octave{{256, 14}, {48, 12}, {12, 14}, {4, 16}, {2, 16}})
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fw, fh := float64(w), float64(h)
	// Background: a lit wall, darker to the bottom-right, warm to the left.
	for y := range h {
		fy := float64(y) / fh
		for x := range w {
			fx := float64(x) / fw
			l := 200 - 90*fy - 40*fx + 20*math.Sin(fx*5+fy*3)
			i := img.PixOffset(x, y)
			img.Pix[i+0] = sat(l + 25*(1-fx))
			img.Pix[i+1] = sat(l)
			img.Pix[i+2] = sat(l - 20 + 30*fx)
			img.Pix[i+3] = 255
		}
	}
	// Objects: shaded discs and boxes with sharp outlines.
	for range 60 {
		cx, cy := rng.Float64()*fw, rng.Float64()*fh
		r := (0.02 + 0.10*rng.Float64()) * fw
		base := [3]float64{40 + 200*rng.Float64(), 40 + 200*rng.Float64(), 40 + 200*rng.Float64()}
		box := rng.IntN(2) == 0
		for y := max(0, int(cy-r)); y < min(h, int(cy+r)); y++ {
			for x := max(0, int(cx-r)); x < min(w, int(cx+r)); x++ {
				dx, dy := (float64(x)-cx)/r, (float64(y)-cy)/r
				if !box && dx*dx+dy*dy > 1 {
					continue
				}
				shade := 0.55 + 0.45*(1-dx*0.6-dy*0.8)/2.4 // light from the top-left
				i := img.PixOffset(x, y)
				for c := range 3 {
					img.Pix[i+c] = sat(base[c] * (0.6 + shade))
				}
			}
		}
	}
	// Texture and sensor noise (a sum of three uniforms) over everything.
	for y := range h {
		for x := range w {
			t := float64(texture[y*w+x])
			n := (rng.Float64() + rng.Float64() + rng.Float64() - 1.5) * 9
			i := img.PixOffset(x, y)
			img.Pix[i+0] = sat(float64(img.Pix[i+0]) + t + n)
			img.Pix[i+1] = sat(float64(img.Pix[i+1]) + t*0.9 + n)
			img.Pix[i+2] = sat(float64(img.Pix[i+2]) + t*0.8 + n)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// octave is one layer of value noise: random values on a grid of cell
// pixels, interpolated bilinearly, with the given amplitude in levels.
type octave struct {
	cell int
	amp  float64
}

// valueNoise returns the sum of the octaves over w×h, in levels.
func valueNoise(rng *rand.Rand, w, h int, octaves []octave) []float32 {
	out := make([]float32, w*h)
	for _, o := range octaves {
		gw, gh := w/o.cell+2, h/o.cell+2
		grid := make([]float64, gw*gh)
		for i := range grid {
			grid[i] = (rng.Float64()*2 - 1) * o.amp
		}
		for y := range h {
			gy, fy := y/o.cell, float64(y%o.cell)/float64(o.cell)
			for x := range w {
				gx, fx := x/o.cell, float64(x%o.cell)/float64(o.cell)
				a, b := grid[gy*gw+gx], grid[gy*gw+gx+1]
				c, d := grid[(gy+1)*gw+gx], grid[(gy+1)*gw+gx+1]
				top, bot := a+(b-a)*fx, c+(d-c)*fx
				out[y*w+x] += float32(top + (bot-top)*fy)
			}
		}
	}
	return out
}

// sat rounds v to a sample value.
func sat(v float64) uint8 {
	return uint8(max(0, min(255, math.Round(v))))
}
