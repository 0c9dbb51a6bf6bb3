package benchkit

import (
	"math"
	"slices"
)

// Summary describes a sample of measurements.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the summary of xs; it is zero for an empty sample.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Sorted(slices.Values(xs))
	return Summary{
		N:      len(s),
		Median: Quantile(s, 0.5),
		P90:    Quantile(s, 0.9),
		Min:    s[0],
		Max:    s[len(s)-1],
	}
}

// Median returns the median of xs, or NaN for an empty sample.
func Median(xs []float64) float64 {
	return Quantile(slices.Sorted(slices.Values(xs)), 0.5)
}

// Quantile returns the q-quantile of the sorted sample s, interpolating
// linearly between the two nearest ranks, or NaN for an empty sample.
func Quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// Ratio compares a target's measurements with the reference's.
type Ratio struct {
	// PairMedian is the median of target/ref computed pair by pair: each
	// pair was measured back to back, so machine drift cancels out.
	PairMedian float64 `json:"pair_median"`
	// OfMedians is median(target) / median(ref).
	OfMedians float64 `json:"of_medians"`
}

// Compare returns the ratio of target to ref, where target[i] and ref[i]
// were measured as a pair.
func Compare(target, ref []float64) Ratio {
	n := min(len(target), len(ref))
	pairs := make([]float64, n)
	for i := range n {
		pairs[i] = target[i] / ref[i]
	}
	return Ratio{PairMedian: Median(pairs), OfMedians: Median(target) / Median(ref)}
}
