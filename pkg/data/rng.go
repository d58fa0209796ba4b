package data

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// rng is the package's pseudo-random source for everything that must be
// reproducible: shuffling orders, splits and the generated built-in datasets.
// The bit source is math/rand/v2's PCG-DXSM, whose algorithm is specified;
// every derived quantity (bounded integers, floats, normals, permutations) is
// computed here rather than by rand.Rand, whose derivations may change between
// Go releases. So a (seed, stream...) tuple names the same sequence forever,
// which is what lets a resumed run see the batches an uninterrupted run saw.
//
// An rng is not safe for concurrent use; derive one per goroutine (or per
// row) from a distinct stream tuple instead.
type rng struct{ src *rand.PCG }

// splitmix64 is one step of the SplitMix64 finaliser (Steele, Lea & Flood
// 2014): a bijective avalanche mixer used to turn small, correlated seeds
// (0, 1, 2, ...) into well-spread PCG states.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRNG returns the generator named by seed and a stream path (for example
// a purpose tag, an epoch, a row number). Distinct tuples give independent
// sequences; the same tuple always gives the same sequence.
func newRNG(seed int64, stream ...uint64) *rng {
	h := splitmix64(uint64(seed))
	for _, s := range stream {
		h = splitmix64(h ^ splitmix64(s))
	}
	return &rng{src: rand.NewPCG(h, splitmix64(h^0x5851f42d4c957f2d))}
}

// Stream tags keep the sequences used for different purposes apart even when
// they share a seed.
const (
	streamShuffle uint64 = iota + 1
	streamSplit
	streamGenerate
)

func (r *rng) uint64() uint64 { return r.src.Uint64() }

// intN returns a uniform integer in [0, n) for n > 0 (Lemire's multiply-shift
// with rejection, so there is no modulo bias).
func (r *rng) intN(n int) int {
	if n <= 0 {
		return 0
	}
	bound := uint64(n)
	threshold := -bound % bound // (2^64 - bound) mod bound
	for {
		hi, lo := bits.Mul64(r.uint64(), bound)
		if lo >= threshold {
			return int(hi)
		}
	}
}

// float64 returns a uniform value in [0, 1) with 53 random bits.
func (r *rng) float64() float64 { return float64(r.uint64()>>11) * 0x1p-53 }

// uniform returns a uniform value in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float64() }

// norm returns a standard normal value (Box–Muller; one value per call).
func (r *rng) norm() float64 {
	u1 := 1 - r.float64() // (0, 1]: log is finite
	u2 := r.float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// bernoulli reports true with probability p.
func (r *rng) bernoulli(p float64) bool { return r.float64() < p }

// perm returns a uniform random permutation of [0, n) (Fisher–Yates).
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.shuffle(p)
	return p
}

// shuffle permutes xs in place uniformly at random (Fisher–Yates).
func (r *rng) shuffle(xs []int) {
	for i := len(xs) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		xs[i], xs[j] = xs[j], xs[i]
	}
}
