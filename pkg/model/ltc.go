package model

import (
	"fmt"
	"math"
	"math/rand"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// DefaultODEUnfolds is the number of fused ODE solver steps per LTC update
// (ncps' ode_unfolds).
const DefaultODEUnfolds = 6

// LTCConfig configures a liquid time-constant cell, ncps LTCCell
// (Hasani et al. 2021) with a fully connected wiring (every neuron and
// every input synapses onto every neuron, self-connections included),
// affine input and output mappings, and ncps' implicit parameter
// constraints (softplus on w, sensory_w, cm and gleak, the default of
// ncps.torch.LTC). One update with input x [B, M] and state v [B, N]:
//
//	x̃ = x·input_w + input_b
//	sensory synapses  a_ij = softplus(sensory_w_ij)·sigmoid(sensory_sigma_ij·(x̃_i − sensory_mu_ij))
//	                  num_s_j = Σ_i a_ij·sensory_erev_ij,  den_s_j = Σ_i a_ij
//	cm_t = softplus(cm)·unfolds/ts
//	repeat unfolds times:
//	    a_ij  = softplus(w_ij)·sigmoid(sigma_ij·(v_i − mu_ij))
//	    num_j = Σ_i a_ij·erev_ij + num_s_j,  den_j = Σ_i a_ij + den_s_j
//	    v_j   = (cm_t_j·v_j + softplus(gleak_j)·vleak_j + num_j) / (cm_t_j + softplus(gleak_j) + den_j + ε)
//	output = v·output_w + output_b
//
// The cell behaves the same in training and evaluation.
type LTCConfig struct {
	// InputSize is M, the width of x (≥ 1).
	InputSize int
	// Units is N, the number of neurons (state and output width) (≥ 1).
	Units int
	// ODEUnfolds is the number of solver steps per update; 0 means 6.
	ODEUnfolds int
	// Epsilon guards the division; 0 means 1e-8 (ncps' default).
	Epsilon float64
	// ElapsedTime is ts, the time between steps; 0 means 1.
	ElapsedTime float64
}

func (cfg LTCConfig) withDefaults() (LTCConfig, error) {
	if cfg.InputSize < 1 {
		return cfg, fmt.Errorf("input size must be ≥ 1, got %d", cfg.InputSize)
	}
	if cfg.Units < 1 {
		return cfg, fmt.Errorf("units (liquid_units) must be ≥ 1, got %d", cfg.Units)
	}
	if cfg.ODEUnfolds == 0 {
		cfg.ODEUnfolds = DefaultODEUnfolds
	}
	if cfg.ODEUnfolds < 1 {
		return cfg, fmt.Errorf("ode_unfolds must be ≥ 1, got %d", cfg.ODEUnfolds)
	}
	if cfg.Epsilon == 0 {
		cfg.Epsilon = 1e-8
	}
	if !(cfg.Epsilon > 0) {
		return cfg, fmt.Errorf("epsilon must be positive, got %g", cfg.Epsilon)
	}
	if cfg.ElapsedTime == 0 {
		cfg.ElapsedTime = 1
	}
	if !(cfg.ElapsedTime > 0) || math.IsInf(cfg.ElapsedTime, 0) {
		return cfg, fmt.Errorf("elapsed_time must be a positive number, got %g", cfg.ElapsedTime)
	}
	return cfg, nil
}

// LTC is the cell of LTCConfig. Parameters under the build scope use
// ncps' names and initial ranges: gleak U(0.001,1), vleak U(−0.2,0.2),
// cm U(0.4,0.6) [N]; sigma U(3,8), mu U(0.3,0.8), w U(0.001,1), erev ±1
// [N, N]; sensory_sigma U(3,8), sensory_mu U(0.3,0.8), sensory_w
// U(0.001,1), sensory_erev ±1 [M, N]; input_w 1, input_b 0 [M]; output_w 1,
// output_b 0 [N]. Reversal potentials are −1 with probability 1/3, +1
// otherwise, as ncps' wiring draws them (from the store's seed, not
// numpy's). ncps' all-ones sparsity masks of the fully connected wiring are
// omitted.
type LTC struct {
	cfg LTCConfig
}

// NewLTC validates cfg and returns the cell.
func NewLTC(cfg LTCConfig) (*LTC, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("ltc: %w", err)
	}
	return &LTC{cfg: c}, nil
}

// Config returns the configuration with defaults filled in.
func (m *LTC) Config() LTCConfig { return m.cfg }

// OutputSize is the width of the cell's output (Units).
func (m *LTC) OutputSize() int { return m.cfg.Units }

// ltcParams are the graph nodes of one LTC build, constraints applied.
type ltcParams struct {
	vleak, erev, sigma, mu, wPos       *G.Node
	sensErev, sensSigma, sensMu, sensW *G.Node
	inW, inB, outW, outB               *G.Node
	cmT, gleakVleak, denomConst        *G.Node // [N]
}

func (m *LTC) params(c *nn.Ctx) (*ltcParams, error) {
	n, in := m.cfg.Units, m.cfg.InputSize
	p := &ltcParams{}
	var firstErr error
	get := func(name string, shape []int, init nn.Init) *G.Node {
		node, err := c.Param(name, shape, init)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return node
	}
	vec, mat, sens := []int{n}, []int{n, n}, []int{in, n}
	gleak := get("gleak", vec, nn.Uniform(0.001, 1))
	p.vleak = get("vleak", vec, nn.Uniform(-0.2, 0.2))
	cm := get("cm", vec, nn.Uniform(0.4, 0.6))
	p.sigma = get("sigma", mat, nn.Uniform(3, 8))
	p.mu = get("mu", mat, nn.Uniform(0.3, 0.8))
	w := get("w", mat, nn.Uniform(0.001, 1))
	p.erev = get("erev", mat, polarityInit{})
	p.sensSigma = get("sensory_sigma", sens, nn.Uniform(3, 8))
	p.sensMu = get("sensory_mu", sens, nn.Uniform(0.3, 0.8))
	sensW := get("sensory_w", sens, nn.Uniform(0.001, 1))
	p.sensErev = get("sensory_erev", sens, polarityInit{})
	p.inW = get("input_w", []int{in}, nn.Ones())
	p.inB = get("input_b", []int{in}, nn.Zeros())
	p.outW = get("output_w", vec, nn.Ones())
	p.outB = get("output_b", vec, nn.Zeros())
	if firstErr != nil {
		return nil, firstErr
	}
	var cmPos, gleakPos *G.Node
	err := chain(
		func() (err error) { p.wPos, err = softplus(w); return },
		func() (err error) { p.sensW, err = softplus(sensW); return },
		func() (err error) { cmPos, err = softplus(cm); return },
		func() (err error) { gleakPos, err = softplus(gleak); return },
		func() (err error) {
			p.cmT, err = G.HadamardDiv(cmPos, scalarConst(c.Dtype(), m.cfg.ElapsedTime/float64(m.cfg.ODEUnfolds)))
			return
		},
		func() (err error) { p.gleakVleak, err = G.HadamardProd(gleakPos, p.vleak); return },
		func() (err error) { p.denomConst, err = G.Add(p.cmT, gleakPos); return },
	)
	if err != nil {
		return nil, c.Errorf("ltc parameters: %v", err)
	}
	return p, nil
}

// step computes one update from x [B, InputSize] and the state v
// [B, Units]; it returns the mapped output and the new state.
func (m *LTC) step(c *nn.Ctx, p *ltcParams, x, v *G.Node) (out, next *G.Node, err error) {
	cfg := m.cfg
	if s := x.Shape(); s.Dims() != 2 || s[1] != cfg.InputSize {
		return nil, nil, c.Errorf("ltc expects input [batch, %d], got %v", cfg.InputSize, s)
	}
	var xm, sens, numS, denS *G.Node
	err = chain(
		func() (err error) { xm, err = G.BroadcastHadamardProd(x, p.inW, nil, []byte{0}); return },
		func() (err error) { xm, err = G.BroadcastAdd(xm, p.inB, nil, []byte{0}); return },
		func() (err error) { sens, err = synapses(xm, p.sensMu, p.sensSigma, p.sensW, p.sensErev); return },
		func() (err error) { numS, err = nn.SliceAxis(sens, 1, 0, cfg.Units); return },
		func() (err error) { denS, err = nn.SliceAxis(sens, 1, cfg.Units, 2*cfg.Units); return },
	)
	if err != nil {
		return nil, nil, c.Errorf("ltc sensory synapses: %v", err)
	}
	eps := scalarConst(c.Dtype(), cfg.Epsilon)
	for k := 0; k < cfg.ODEUnfolds; k++ {
		var syn, num, den, numer, denom *G.Node
		err = chain(
			func() (err error) { syn, err = synapses(v, p.mu, p.sigma, p.wPos, p.erev); return },
			func() (err error) { num, err = nn.SliceAxis(syn, 1, 0, cfg.Units); return },
			func() (err error) { den, err = nn.SliceAxis(syn, 1, cfg.Units, 2*cfg.Units); return },
			func() (err error) { num, err = G.Add(num, numS); return },
			func() (err error) { den, err = G.Add(den, denS); return },
			func() (err error) { numer, err = G.BroadcastHadamardProd(v, p.cmT, nil, []byte{0}); return },
			func() (err error) { numer, err = G.BroadcastAdd(numer, p.gleakVleak, nil, []byte{0}); return },
			func() (err error) { numer, err = G.Add(numer, num); return },
			func() (err error) { denom, err = G.BroadcastAdd(den, p.denomConst, nil, []byte{0}); return },
			func() (err error) { denom, err = G.Add(denom, eps); return },
			func() (err error) { v, err = G.HadamardDiv(numer, denom); return },
		)
		if err != nil {
			return nil, nil, c.Errorf("ltc unfold %d: %v", k+1, err)
		}
	}
	err = chain(
		func() (err error) { out, err = G.BroadcastHadamardProd(v, p.outW, nil, []byte{0}); return },
		func() (err error) { out, err = G.BroadcastAdd(out, p.outB, nil, []byte{0}); return },
	)
	if err != nil {
		return nil, nil, c.Errorf("ltc output mapping: %v", err)
	}
	return out, v, nil
}

// Forward runs the cell over xs (T nodes [B, InputSize]) from v0 = 0 and
// returns the T mapped outputs, each [B, Units].
func (m *LTC) Forward(c *nn.Ctx, xs []*G.Node) ([]*G.Node, error) {
	if len(xs) == 0 {
		return nil, c.Errorf("ltc: empty input sequence (num_spike_steps must be ≥ 1)")
	}
	p, err := m.params(c)
	if err != nil {
		return nil, err
	}
	s := xs[0].Shape()
	if s.Dims() != 2 {
		return nil, c.Errorf("ltc expects inputs [batch, %d], got %v", m.cfg.InputSize, s)
	}
	v := zerosNode(c, []int{s[0], m.cfg.Units}, c.Path()+".v0")
	outs := make([]*G.Node, 0, len(xs))
	for t, x := range xs {
		var out *G.Node
		if out, v, err = m.step(c, p, x, v); err != nil {
			return nil, fmt.Errorf("%w (at step %d)", err, t+1)
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// polarityInit draws reversal potentials: −1 with probability 1/3, +1
// otherwise (ncps wirings' rng.choice([−1, 1, 1])).
type polarityInit struct{}

func (polarityInit) Fill(dst []float64, _ []int, rng *rand.Rand) error {
	for i := range dst {
		dst[i] = 1
		if rng.Intn(3) == 0 {
			dst[i] = -1
		}
	}
	return nil
}

func (polarityInit) String() string { return "polarity(-1 w.p. 1/3, +1)" }

// softplus is PyTorch's Softplus (β = 1, threshold 20): log(1 + eˣ), and x
// itself above 20. Its derivative is sigmoid(x) (1 above 20).
func softplus(x *G.Node) (*G.Node, error) {
	return nn.Pointwise(x, "Softplus{threshold=20}", func(v float64) float64 {
		if v > 20 {
			return v
		}
		return math.Log1p(math.Exp(v))
	}, func(v float64) float64 {
		if v > 20 {
			return 1
		}
		z := math.Exp(v)
		return z / (z + 1)
	})
}

// synapses returns [num | den], shape [B, 2N], for presynaptic potentials
// v [B, M] and synapse parameters mu, sigma, w, erev [M, N]:
//
//	a_bij = w_ij·sigmoid(sigma_ij·(v_bi − mu_ij))
//	num_bj = Σ_i a_bij·erev_ij,   den_bj = Σ_i a_bij
//
// The [B, M, N] activations are never materialised. The backward is one
// op that writes every input's gradient into a packed vector, unpacked by
// cheap slices (DESIGN.md §3, fused ops).
func synapses(v, mu, sigma, w, erev *G.Node) (*G.Node, error) {
	vs := v.Shape()
	ps := mu.Shape()
	if vs.Dims() != 2 || ps.Dims() != 2 || vs[1] != ps[0] {
		return nil, fmt.Errorf("synapses: input %v does not match parameters %v", vs, ps)
	}
	for _, q := range []*G.Node{sigma, w, erev} {
		if !q.Shape().Eq(ps) {
			return nil, fmt.Errorf("synapses: parameter shape %v, want %v", q.Shape(), ps)
		}
	}
	b, m, n := vs[0], ps[0], ps[1]
	k := &nn.Kernel{
		Name: fmt.Sprintf("LTCSynapses{%d,%d,%d}", b, m, n),
		Shape: func([]tensor.Shape) (tensor.Shape, error) {
			return tensor.Shape{b, 2 * n}, nil
		},
		Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
			out := nn.Output(dst, in[0].Dtype(), tensor.Shape{b, 2 * n})
			switch in[0].Dtype() {
			case tensor.Float64:
				synapseForward(b, m, n, floats[float64](in), nn.Slice[float64](out))
			case tensor.Float32:
				synapseForward(b, m, n, floats[float32](in), nn.Slice[float32](out))
			default:
				return nil, fmt.Errorf("unsupported dtype %v", in[0].Dtype())
			}
			return out, nil
		},
	}
	k.Backward = func(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		bk := &nn.Kernel{
			Name: fmt.Sprintf("LTCSynapsesGrad{%d,%d,%d}", b, m, n),
			Shape: func([]tensor.Shape) (tensor.Shape, error) {
				// One packed row [1, K] holding every input's gradient: a
				// single backward op instead of one BPTT per input
				// (DESIGN.md, fused ops); SliceAxis unpacks it below.
				return tensor.Shape{1, b*m + 4*m*n}, nil
			},
			Forward: func(in []*tensor.Dense, dst *tensor.Dense) (*tensor.Dense, error) {
				out := nn.Output(dst, in[0].Dtype(), tensor.Shape{1, b*m + 4*m*n})
				switch in[0].Dtype() {
				case tensor.Float64:
					synapseBackward(b, m, n, floats[float64](in), nn.Slice[float64](out))
				case tensor.Float32:
					synapseBackward(b, m, n, floats[float32](in), nn.Slice[float32](out))
				default:
					return nil, fmt.Errorf("unsupported dtype %v", in[0].Dtype())
				}
				return out, nil
			},
		}
		packed, err := nn.Apply(bk, append(append(G.Nodes{}, in...), grad)...)
		if err != nil {
			return nil, err
		}
		gs := make(G.Nodes, 5)
		off := 0
		for i, sh := range [][]int{{b, m}, {m, n}, {m, n}, {m, n}, {m, n}} {
			size := sh[0] * sh[1]
			part, err := nn.SliceAxis(packed, 1, off, off+size)
			if err != nil {
				return nil, err
			}
			if gs[i], err = nn.Reshape(part, sh...); err != nil {
				return nil, err
			}
			off += size
		}
		return gs, nil
	}
	return nn.Apply(k, v, mu, sigma, w, erev)
}

// floats returns the backing slices of dense tensors of element type T.
func floats[T nn.Float](in []*tensor.Dense) [][]T {
	out := make([][]T, len(in))
	for i, d := range in {
		out[i] = nn.Slice[T](d)
	}
	return out
}

func sigmoidT[T nn.Float](z T) T {
	if z >= 0 {
		return 1 / (1 + T(math.Exp(float64(-z))))
	}
	e := T(math.Exp(float64(z)))
	return e / (1 + e)
}

// synapseForward: in = v [b,m], mu, sigma, w, erev [m,n]; out [b, 2n].
func synapseForward[T nn.Float](b, m, n int, in [][]T, out []T) {
	v, mu, sigma, w, erev := in[0], in[1], in[2], in[3], in[4]
	for bi := 0; bi < b; bi++ {
		num := out[bi*2*n : bi*2*n+n]
		den := out[bi*2*n+n : (bi+1)*2*n]
		for i := 0; i < m; i++ {
			vi := v[bi*m+i]
			row := i * n
			for j := 0; j < n; j++ {
				a := w[row+j] * sigmoidT(sigma[row+j]*(vi-mu[row+j]))
				num[j] += a * erev[row+j]
				den[j] += a
			}
		}
	}
}

// synapseBackward: in = v, mu, sigma, w, erev, grad [b, 2n]; out packs
// dv [b·m], dmu, dsigma, dw, derev [m·n each].
func synapseBackward[T nn.Float](b, m, n int, in [][]T, out []T) {
	v, mu, sigma, w, erev, g := in[0], in[1], in[2], in[3], in[4], in[5]
	dv := out[:b*m]
	dmu := out[b*m : b*m+m*n]
	dsigma := out[b*m+m*n : b*m+2*m*n]
	dw := out[b*m+2*m*n : b*m+3*m*n]
	derev := out[b*m+3*m*n:]
	for bi := 0; bi < b; bi++ {
		gn := g[bi*2*n : bi*2*n+n]
		gd := g[bi*2*n+n : (bi+1)*2*n]
		for i := 0; i < m; i++ {
			vi := v[bi*m+i]
			row := i * n
			var dvi T
			for j := 0; j < n; j++ {
				diff := vi - mu[row+j]
				s := sigmoidT(sigma[row+j] * diff)
				a := w[row+j] * s
				dA := gn[j]*erev[row+j] + gd[j] // d loss / d a_bij
				dw[row+j] += dA * s
				derev[row+j] += gn[j] * a
				dz := dA * w[row+j] * s * (1 - s) // d loss / d (sigma·(v−mu))
				dsigma[row+j] += dz * diff
				dmu[row+j] -= dz * sigma[row+j]
				dvi += dz * sigma[row+j]
			}
			dv[bi*m+i] = dvi
		}
	}
}
