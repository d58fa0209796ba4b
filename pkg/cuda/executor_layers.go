package cuda

import (
	"fmt"
	"math"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Lowerings of pkg/nn's layer kernels: losses, pooling, embedding, layer
// norm, attention and convolution (see lowerings).

// lowerMSE lowers the mean squared error (pred, target) → [1] and its
// backward (pred, target, g) → 2g·(pred − target)/n.
func lowerMSE(m *Machine, st *xstep) (func() error, error) {
	p, t := st.in[0].buf, st.in[1].buf
	n := p.N
	if t.N != n {
		return nil, nil
	}
	y := st.out.buf
	if st.fam == "MSE/grad" {
		return seq(m.k1("lsf_sub", n, p, t, y, n), m.k1("lsf_scale", n, y, 2/float32(n), y, n),
			m.k1("lsf_mul_row", n, y, st.in[2].buf, y, n, 1)), nil
	}
	d, err := m.alloc(n)
	if err != nil {
		return nil, err
	}
	return seq(m.k1("lsf_sub", n, p, t, d, n), m.k1("lsf_square", n, d, d, n),
		m.kRows("lsf_sum_all", 1, d, y, n), m.k1("lsf_scale", 1, y, 1/float32(n), y, 1)), nil
}

// lowerMaxPool1d lowers 1-D max pooling x [B, C, L] → [B, C, L'] and its
// backward (x, dy) → dx, which recomputes the argmax with the forward
// kernel (first maximum of each window, as the CPU kernel).
func lowerMaxPool1d(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	k, ok1 := intList(field(name, "k"))
	s, ok2 := intList(field(name, "s"))
	p, ok3 := intList(field(name, "p"))
	x := st.in[0]
	xs := x.node.Shape()
	if !(ok1 && ok2 && ok3) || len(k) != 1 || len(s) != 1 || len(p) != 1 || xs.Dims() != 3 {
		return nil, nil
	}
	rows, l := xs[0]*xs[1], xs[2]
	pooled := st.out.buf
	if st.fam == "MaxPool1dGrad" {
		pooled = st.in[1].buf
	}
	outLen := pooled.N / rows
	scratch, err := m.alloc(2 * pooled.N)
	if err != nil {
		return nil, err
	}
	y, arg := scratch.at(0, pooled.N), scratch.at(pooled.N, pooled.N)
	if st.fam == "MaxPool1d" {
		y = st.out.buf
	}
	fwd := m.k1("lsf_maxpool1d", pooled.N, x.buf, y, arg, rows, l, outLen, k[0], s[0], p[0])
	if st.fam == "MaxPool1d" {
		return fwd, nil
	}
	dx := st.out.buf
	return seq(fwd, m.k1("lsf_fill", dx.N, dx, float32(0), dx.N),
		m.k1("lsf_maxpool1d_grad", pooled.N, st.in[1].buf, arg, dx, rows, l, outLen)), nil
}

// lowerMaxPool2d lowers 2-D max pooling x [B, C, H, W] → [B, C, H', W']
// and its backward (x, dy) → dx, which recomputes the argmax with the
// forward kernel and scatters dy with lsf_maxpool1d_grad over the
// flattened planes.
func lowerMaxPool2d(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	k, ok1 := intList(field(name, "k"))
	s, ok2 := intList(field(name, "s"))
	p, ok3 := intList(field(name, "p"))
	d, ok4 := intList(field(name, "d"))
	x := st.in[0]
	xs := x.node.Shape()
	pooledNode := st.node
	if st.fam == "MaxPool2dGrad" {
		pooledNode = st.in[1].node
	}
	ys := pooledNode.Shape()
	if !(ok1 && ok2 && ok3 && ok4) || len(k) != 2 || len(s) != 2 || len(p) != 2 || !slices.Equal(d, []int{1, 1}) ||
		xs.Dims() != 4 || ys.Dims() != 4 {
		return nil, nil
	}
	planes, h, w, oh, ow := xs[0]*xs[1], xs[2], xs[3], ys[2], ys[3]
	n := planes * oh * ow
	scratch, err := m.alloc(2 * n)
	if err != nil {
		return nil, err
	}
	y, arg := scratch.at(0, n), scratch.at(n, n)
	if st.fam == "MaxPool2d" {
		y = st.out.buf
	}
	fwd := m.k1("lsf_maxpool2d", n, x.buf, y, arg, planes, h, w, oh, ow, k[0], k[1], s[0], s[1], p[0], p[1])
	if st.fam == "MaxPool2d" {
		return fwd, nil
	}
	dx := st.out.buf
	return seq(fwd, m.k1("lsf_fill", dx.N, dx, float32(0), dx.N),
		m.k1("lsf_maxpool1d_grad", n, st.in[1].buf, arg, dx, planes, h*w, oh*ow)), nil
}

// lowerDropout applies a dropout mask on the device. The mask comes from
// the op itself: its CPU code run on a tensor of ones gives keep/(1−p)
// per element (the forward draws this run's mask from the op's RNG, once
// per run as on the CPU; the gradient op returns the same mask). It is
// uploaded and multiplied in: no download of x and no wait, where the
// host fallback downloaded x and synchronised.
func lowerDropout(m *Machine, st *xstep) (func() error, error) {
	x := st.in[0]
	n := x.buf.N
	pd, ok := st.op.(G.UsePreallocDoer)
	if !ok || x.ints || st.out.buf.N != n || x.node.Shape().Dims() == 0 {
		return nil, nil
	}
	shape := x.node.Shape().Clone()
	ones := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
	if err := ones.Memset(float32(1)); err != nil {
		return nil, err
	}
	mask := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
	maskBuf, err := m.alloc(n)
	if err != nil {
		return nil, err
	}
	draw := func() error {
		v, err := recoverDo(st.op, func() (G.Value, error) { return pd.UsePreallocDo(mask, ones) })
		if err != nil {
			return err
		}
		f, err := floats(v)
		if err != nil {
			return fmt.Errorf("dropout mask: %w", err)
		}
		if len(f) != n {
			return fmt.Errorf("dropout mask has %d values, the graph expects %d", len(f), n)
		}
		return m.dev.upload(maskBuf, f)
	}
	return seq(draw, m.k1("lsf_mul", n, x.buf, maskBuf, st.out.buf, n)), nil
}

// checkIDs is the host check Embedding's forward makes: every id of the
// bound index input in [0, num).
func checkIDs(s *slot, num int) func() error {
	return func() error {
		for i, id := range hostInts(s) {
			if id < 0 || id >= num {
				return fmt.Errorf("index %d at position %d is outside [0, %d)", id, i, num)
			}
		}
		return nil
	}
}

// lowerEmbedding gathers table rows; the ids are an input, checked on
// the host as the CPU kernel does.
func lowerEmbedding(m *Machine, st *xstep) (func() error, error) {
	table, idx := st.in[0], st.in[1]
	ts := table.node.Shape()
	if ts.Dims() != 2 || !idx.ints || !idx.input {
		return nil, nil
	}
	rows, cols := idx.buf.N, ts[1]
	return seq(checkIDs(idx, ts[0]), m.k1("lsf_gather_rows", rows*cols, table.buf, idx.buf, st.out.buf, rows, cols)), nil
}

// lowerEmbeddingGrad scatters gradient rows into a zeroed table gradient
// (no padding row: with one, the host skips it).
func lowerEmbeddingGrad(m *Machine, st *xstep) (func() error, error) {
	g, idx := st.in[0], st.in[1]
	if pad, ok := intField(opName(st), "pad"); !ok || pad >= 0 || !idx.ints {
		return nil, nil
	}
	ys := st.node.Shape()
	rows, cols, y := idx.buf.N, ys[1], st.out.buf
	return seq(m.k1("lsf_fill", y.N, y, float32(0), y.N), m.k1("lsf_scatter_add_rows", rows*cols, g.buf, idx.buf, y, rows, cols)), nil
}

// lowerLayerNorm lowers LayerNorm (x, w, b), /dx (x, w, g) and /dweight
// (x, g). The backward steps recompute the row statistics with the
// forward kernel into scratch buffers.
func lowerLayerNorm(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	f, ok1 := intField(name, "F")
	eps, ok2 := floatField(name, "eps")
	if !ok1 || !ok2 {
		return nil, nil
	}
	x := st.in[0].buf
	rows := x.N / f
	scratch, err := m.alloc(x.N + 2*rows + 2*f)
	if err != nil {
		return nil, err
	}
	ys, mean, rstd := scratch.at(0, x.N), scratch.at(x.N, rows), scratch.at(x.N+rows, rows)
	fw, fb := scratch.at(x.N+2*rows, f), scratch.at(x.N+2*rows+f, f)
	stats := func(w, b Buffer) func() error {
		return m.kRows("lsf_layernorm", rows, x, w, b, ys, mean, rstd, rows, f, float32(eps))
	}
	switch st.fam {
	case "LayerNorm":
		return m.kRows("lsf_layernorm", rows, x, st.in[1].buf, st.in[2].buf, st.out.buf, mean, rstd, rows, f, float32(eps)), nil
	case "LayerNorm/dx":
		w := st.in[1].buf
		return seq(stats(w, fb), m.kRows("lsf_layernorm_grad_x", rows, x, w, st.in[2].buf, mean, rstd, st.out.buf, rows, f)), nil
	default: // dweight: dw = Σ g·x̂ (db, written to scratch, is SumLeading's)
		return seq(stats(fw, fb), m.k1("lsf_layernorm_grad_wb", f, x, st.in[1].buf, mean, rstd, st.out.buf, fb, rows, f)), nil
	}
}

// lowerCrossEntropy lowers the mean cross-entropy and its backward. The
// labels are an input: their count and range are checked on the host
// (the CPU kernel rejects labels out of range), so no value is read back.
func lowerCrossEntropy(m *Machine, st *xstep) (func() error, error) {
	x, labels := st.in[0], st.in[1]
	xs := x.node.Shape()
	if !labels.ints || !labels.input || xs.Dims() < 2 {
		return nil, nil
	}
	ignore, hasIgnore := intField(opName(st), "ignore")
	if !hasIgnore {
		ignore = math.MinInt32
	}
	cols := xs[xs.Dims()-1]
	rows := x.buf.N / cols
	if labels.buf.N != rows {
		return nil, nil
	}
	// inv is 1/(counted rows), set on the host before the launches.
	var inv float32
	count := func() error {
		n := 0
		for i, l := range hostInts(labels) {
			if hasIgnore && l == ignore {
				continue
			}
			if l < 0 || l >= cols {
				return fmt.Errorf("label %d at position %d is outside [0, %d)", l, i, cols)
			}
			n++
		}
		inv = 0
		if n > 0 {
			inv = 1 / float32(n)
		}
		return nil
	}
	y := st.out.buf
	if st.fam == "CrossEntropy/grad" {
		g := st.in[2].buf
		return seq(count, func() error {
			return launchRows(m.dev, "lsf_xent_grad", rows, x.buf, labels.buf, y, rows, cols, ignore, inv)
		}, m.k1("lsf_mul_row", y.N, y, g, y, y.N, 1)), nil
	}
	scratch, err := m.alloc(2 * rows)
	if err != nil {
		return nil, err
	}
	loss, counted := scratch.at(0, rows), scratch.at(rows, rows)
	return seq(count, m.kRows("lsf_xent", rows, x.buf, labels.buf, loss, counted, rows, cols, ignore),
		m.kRows("lsf_sum_all", 1, loss, y, rows),
		func() error { return launch1D(m.dev, "lsf_scale", 1, y, inv, y, 1) }), nil
}

// attnGeom is the attention geometry from an Attention* op name: head h
// of a [B, L, D] tensor is the L×dh matrix at b·L·D + h·dh, row stride
// D; weights blocks are Lq×Lk at (b·heads+h)·Lq·Lk.
type attnGeom struct{ b, lq, lk, d, heads, dh int }

func parseAttn(name string) (attnGeom, bool) {
	var g attnGeom
	var ok [5]bool
	g.b, ok[0] = intField(name, "B")
	g.lq, ok[1] = intField(name, "Lq")
	g.lk, ok[2] = intField(name, "Lk")
	g.d, ok[3] = intField(name, "D")
	g.heads, ok[4] = intField(name, "heads")
	if ok != [5]bool{true, true, true, true, true} || g.heads <= 0 || g.d%g.heads != 0 {
		return g, false
	}
	g.dh = g.d / g.heads
	return g, true
}

// seq lists the head offsets of a [B, l, D] tensor; w those of the
// weights.
func (g attnGeom) seq(l int) []int {
	out := make([]int, 0, g.b*g.heads)
	for b := 0; b < g.b; b++ {
		for h := 0; h < g.heads; h++ {
			out = append(out, b*l*g.d+h*g.dh)
		}
	}
	return out
}

func (g attnGeom) w() []int { return strided(g.b*g.heads, 0, g.lq*g.lk) }

// lowerAttention lowers the attention kernels to batched GEMMs over the
// B·heads blocks plus the softmax kernels.
func lowerAttention(m *Machine, st *xstep) (func() error, error) {
	g, ok := parseAttn(opName(st))
	if !ok {
		return nil, nil
	}
	scale := float32(1 / math.Sqrt(float64(g.dh)))
	in := func(i int, offs []int) batch { return batch{st.in[i].buf, offs} }
	out := func(offs []int) batch { return batch{st.out.buf, offs} }
	rows := g.b * g.heads * g.lq
	switch st.fam {
	case "AttentionWeights":
		mm, err := m.gemmBatched(false, true, g.lq, g.lk, g.dh, scale, in(0, g.seq(g.lq)), g.d, in(1, g.seq(g.lk)), g.d, out(g.w()), g.lk)
		if err != nil {
			return nil, err
		}
		mask, div := st.out.buf, 0
		if len(st.in) == 3 {
			mask, div = st.in[2].buf, g.heads*g.lq
		}
		return seq(mm, m.kRows("lsf_softmax", rows, st.out.buf, mask, st.out.buf, rows, g.lk, div)), nil
	case "AttentionWeights/dq", "AttentionWeights/dk":
		ds, err := m.alloc(st.in[0].buf.N)
		if err != nil {
			return nil, err
		}
		var mm func() error
		if st.fam == "AttentionWeights/dq" { // dq_bh = scale·dS·k_bh
			mm, err = m.gemmBatched(false, false, g.lq, g.dh, g.lk, scale, batch{ds, g.w()}, g.lk, in(2, g.seq(g.lk)), g.d, out(g.seq(g.lq)), g.d)
		} else { // dk_bh = scale·dSᵀ·q_bh
			mm, err = m.gemmBatched(true, false, g.lk, g.dh, g.lq, scale, batch{ds, g.w()}, g.lk, in(2, g.seq(g.lq)), g.d, out(g.seq(g.lk)), g.d)
		}
		if err != nil {
			return nil, err
		}
		return seq(m.kRows("lsf_softmax_grad", rows, st.in[0].buf, st.in[1].buf, ds, rows, g.lk), mm), nil
	case "AttentionApply": // out_bh = A_bh·v_bh
		return m.gemmBatched(false, false, g.lq, g.dh, g.lk, 1, in(0, g.w()), g.lk, in(1, g.seq(g.lk)), g.d, out(g.seq(g.lq)), g.d)
	case "AttentionApply/da": // dA_bh = dout_bh·v_bhᵀ
		return m.gemmBatched(false, true, g.lq, g.lk, g.dh, 1, in(0, g.seq(g.lq)), g.d, in(1, g.seq(g.lk)), g.d, out(g.w()), g.lk)
	case "AttentionApply/dv": // dv_bh = A_bhᵀ·dout_bh
		return m.gemmBatched(true, false, g.lk, g.dh, g.lq, 1, in(0, g.w()), g.lk, in(1, g.seq(g.lq)), g.d, out(g.seq(g.lk)), g.d)
	}
	return nil, nil
}

// lowerBatchNorm lowers BatchNorm (γ, x, β, running mean, running var),
// BatchNormInputGrad (x, dy, γ, rm, rv) and BatchNormWeightGrad (x, rm,
// rv, dy) over x viewed as [B, C, S]. Training normalises with the batch
// statistics (recomputed by each backward op) and updates the resident
// running statistics; evaluation uses the running ones.
func lowerBatchNorm(m *Machine, st *xstep) (func() error, error) {
	name := opName(st)
	eps, ok1 := floatField(name, "eps")
	mom, ok2 := floatField(name, "momentum")
	train := field(name, "train")
	x := st.in[0]
	if st.fam == "BatchNorm" {
		x = st.in[1]
	}
	xs := x.node.Shape()
	if !ok1 || !ok2 || (train != "true" && train != "false") || xs.Dims() < 2 {
		return nil, nil
	}
	b, c, sz := split(xs, 1, 2)
	scratch, err := m.alloc(4 * c)
	if err != nil {
		return nil, err
	}
	mean, vr, sg, sgx := scratch.at(0, c), scratch.at(c, c), scratch.at(2*c, c), scratch.at(3*c, c)
	// stats returns the statistics to normalise with: the batch's (computed
	// into mean, vr) in training, the running ones otherwise.
	stats := func(rm, rv Buffer) (Buffer, Buffer, []func() error) {
		if train == "false" {
			return rm, rv, nil
		}
		return mean, vr, []func() error{m.kRows("lsf_channel_stats", c, x.buf, mean, vr, b, c, sz)}
	}
	n := x.buf.N
	e := float32(eps)
	switch st.fam {
	case "BatchNorm":
		gamma, beta, rm, rv := st.in[0].buf, st.in[2].buf, st.in[3], st.in[4]
		if train == "true" && (rm.param == nil || rv.param == nil) {
			return nil, nil // running statistics not resident: the host updates them
		}
		mu, v, runs := stats(rm.buf, rv.buf)
		if train == "true" {
			runs = append(runs, m.k1("lsf_bn_running", c, rm.buf, rv.buf, mean, vr, c, float32(mom), float32(b*sz)))
		}
		return seq(append(runs, m.k1("lsf_channel_affine", n, x.buf, mu, v, gamma, beta, st.out.buf, b, c, sz, e))...), nil
	case "BatchNormInputGrad":
		dy, gamma, rm, rv := st.in[1].buf, st.in[2].buf, st.in[3].buf, st.in[4].buf
		mu, v, runs := stats(rm, rv)
		isTrain := 0
		if train == "true" {
			isTrain = 1
			runs = append(runs, m.kRows("lsf_bn_grad_sums", c, x.buf, dy, mu, v, sg, sgx, b, c, sz, e))
		}
		return seq(append(runs, m.k1("lsf_bn_grad_x", n, x.buf, dy, gamma, mu, v, sg, sgx, st.out.buf, b, c, sz, e, isTrain))...), nil
	default: // BatchNormWeightGrad: dγ = Σ dy·x̂ (the sgx output of the sums)
		rm, rv, dy := st.in[1].buf, st.in[2].buf, st.in[3].buf
		mu, v, runs := stats(rm, rv)
		return seq(append(runs, m.kRows("lsf_bn_grad_sums", c, x.buf, dy, mu, v, sg, st.out.buf, b, c, sz, e))...), nil
	}
}
