package cuda

import (
	"gorgonia.org/tensor"
)

// Lowerings of pkg/nn's convolutions (Conv1d, Conv2d, Conv3d and their
// input and weight gradients): column kernels (im2col and its adjoint)
// plus cuBLAS GEMMs, one code path for every dimensionality.

// convGeom is a convolution's geometry from the op name and its input and
// output shapes, every case as a 3-D one (pkg/nn's convention): a 1-D
// input [B, C, L] is [B, C, 1, 1, L], a 2-D one [B, C, 1, H, W], the added
// leading axes with kernel 1, stride 1, padding 0 and dilation 1. The
// triples are (depth, height, width); grp groups of c/grp input and o/grp
// output channels.
type convGeom struct {
	b, c, o, grp          int
	in, out, k, s, p, dil [3]int
}

// colRows and pos are the column matrix sizes per sample: C·kd·kh·kw rows,
// od·oh·ow columns; groupRows and groupOut a group's share of the rows and
// of the output channels.
func (g convGeom) colRows() int   { return g.c * g.k[0] * g.k[1] * g.k[2] }
func (g convGeom) pos() int       { return g.out[0] * g.out[1] * g.out[2] }
func (g convGeom) groupRows() int { return g.colRows() / g.grp }
func (g convGeom) groupOut() int  { return g.o / g.grp }

// offsets lists, for every (sample, group) pair, sampleStride·b +
// groupStride·g (sample-major, as the batched GEMMs pair them).
func (g convGeom) offsets(sampleStride, groupStride int) []int {
	out := make([]int, 0, g.b*g.grp)
	for b := 0; b < g.b; b++ {
		for k := 0; k < g.grp; k++ {
			out = append(out, b*sampleStride+k*groupStride)
		}
	}
	return out
}

// planar reports whether the 2-D column kernels (lsf_im2col2d,
// lsf_col2im2d) cover the geometry: a trivial depth axis and no dilation.
// The rest (Conv3d, dilated Conv1d) runs the 3-D ones.
func (g convGeom) planar() bool {
	return g.in[0] == 1 && g.k[0] == 1 && g.p[0] == 0 && g.dil == [3]int{1, 1, 1}
}

// colKernels names the column kernels of the geometry and their common
// arguments after (source, destination): every channel plane of the batch
// at once (B·C planes), then the sizes.
func (g convGeom) colKernels() (im2col, col2im string, args []any) {
	planes := g.b * g.c
	if g.planar() {
		return "lsf_im2col2d", "lsf_col2im2d", []any{planes, g.in[1], g.in[2], g.k[1], g.k[2], g.s[1], g.s[2],
			g.p[1], g.p[2], g.out[1], g.out[2]}
	}
	args = []any{planes}
	for _, t := range [][3]int{g.in, g.k, g.s, g.p, g.dil, g.out} {
		args = append(args, t[0], t[1], t[2])
	}
	return "lsf_im2col3d", "lsf_col2im3d", args
}

// parseConv parses a 1-, 2- or 3-D convolution's geometry from its op name
// (k, s, p, d: one value per spatial axis; g: groups) and its input and
// output shapes.
func parseConv(name string, x, y tensor.Shape) (convGeom, bool) {
	var g convGeom
	k, ok1 := intList(field(name, "k"))
	s, ok2 := intList(field(name, "s"))
	p, ok3 := intList(field(name, "p"))
	d, ok4 := intList(field(name, "d"))
	grp, ok5 := intField(name, "g")
	nd := x.Dims() - 2
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || grp < 1 || nd < 1 || nd > 3 || y.Dims() != x.Dims() ||
		len(k) != nd || len(s) != nd || len(p) != nd || len(d) != nd || x[1]%grp != 0 || y[1]%grp != 0 {
		return g, false
	}
	g = convGeom{b: x[0], c: x[1], o: y[1], grp: grp}
	for i := range 3 {
		g.in[i], g.out[i], g.k[i], g.s[i], g.dil[i] = 1, 1, 1, 1, 1
	}
	for j := range nd {
		i := 3 - nd + j
		if k[j] < 1 || s[j] < 1 || p[j] < 0 || d[j] < 1 {
			return g, false
		}
		g.in[i], g.out[i], g.k[i], g.s[i], g.p[i], g.dil[i] = x[2+j], y[2+j], k[j], s[j], p[j], d[j]
	}
	return g, true
}

// lowerConv lowers Conv{1,2,3}d (x, W[, b]), Conv{1,2,3}dInputGrad (W, g)
// and Conv{1,2,3}dWeightGrad (x, g) to one column-kernel launch over all
// B·C channel planes (the column matrices come out per sample,
// [B][C·kd·kh·kw][od·oh·ow], each group's rows contiguous) and GEMMs
// batched over (sample, group). The input gradient's adjoint kernel is
// lsf_col2im2d (atomic scatter-add into a zeroed dx) for planar
// geometries, lsf_col2im3d (a gather per input element, deterministic)
// for the others.
func lowerConv(m *Machine, st *xstep) (func() error, error) {
	var xs, ys tensor.Shape
	kind := st.fam[len("Conv2d"):] // "", "InputGrad" or "WeightGrad"
	switch kind {
	case "":
		xs, ys = st.in[0].node.Shape(), st.node.Shape()
	case "InputGrad":
		xs, ys = st.node.Shape(), st.in[1].node.Shape()
	default:
		xs, ys = st.in[0].node.Shape(), st.in[1].node.Shape()
	}
	g, ok := parseConv(opName(st), xs, ys)
	if !ok {
		return nil, nil
	}
	rowsK, pos, rg, og := g.colRows(), g.pos(), g.groupRows(), g.groupOut()
	cols, err := m.alloc(g.b * rowsK * pos)
	if err != nil {
		return nil, err
	}
	im2colName, col2imName, geom := g.colKernels()
	im2col := func(x Buffer) func() error {
		return m.k1(im2colName, cols.N, append([]any{x, cols}, geom...)...)
	}
	// The operands of (sample, group) pairs: weight blocks [og, rg], column
	// blocks [rg, P] and output-channel blocks [og, P].
	weights := func(buf Buffer) batch { return batch{buf, g.offsets(0, og*rg)} }
	colBlocks := batch{cols, g.offsets(rowsK*pos, rg*pos)}
	outBlocks := func(buf Buffer) batch { return batch{buf, g.offsets(g.o*pos, og*pos)} }
	switch kind {
	case "": // y_bg = W_g·cols_bg (+ bias per channel)
		mm, err := m.gemmBatched(false, false, og, pos, rg, 1, weights(st.in[1].buf), rg, colBlocks, pos, outBlocks(st.out.buf), pos)
		if err != nil {
			return nil, err
		}
		run := seq(im2col(st.in[0].buf), mm)
		if len(st.in) == 3 {
			run = seq(run, m.k1("lsf_add_channel", st.out.buf.N, st.out.buf, st.in[2].buf, g.b, g.o, pos))
		}
		return run, nil
	case "InputGrad": // dcols_bg = W_gᵀ·g_bg, then the adjoint of im2col into dx
		mm, err := m.gemmBatched(true, false, rg, pos, og, 1, weights(st.in[0].buf), rg, outBlocks(st.in[1].buf), pos, colBlocks, pos)
		if err != nil {
			return nil, err
		}
		dx, args := st.out.buf, append([]any{cols, st.out.buf}, geom...)
		if g.planar() {
			return seq(mm, m.k1("lsf_fill", dx.N, dx, float32(0), dx.N), m.k1(col2imName, cols.N, args...)), nil
		}
		return seq(mm, m.k1(col2imName, dx.N, args...)), nil
	}
	// dW_g = Σ_b g_bg·cols_bgᵀ: one GEMM per group over [og, B·P]×[B·P, rg]
	// once the batch is moved inside (gT [O, B·P], colsT [CKK, B·P]).
	gT, err := m.alloc(st.in[1].buf.N)
	if err != nil {
		return nil, err
	}
	colsT, err := m.alloc(cols.N)
	if err != nil {
		return nil, err
	}
	bp := g.b * pos
	mm, err := m.gemmBatched(false, true, og, rg, bp, 1, batch{gT, strided(g.grp, 0, og*bp)}, bp,
		batch{colsT, strided(g.grp, 0, rg*bp)}, bp, batch{st.out.buf, strided(g.grp, 0, og*rg)}, rg)
	if err != nil {
		return nil, err
	}
	return seq(im2col(st.in[0].buf),
		m.k1("lsf_swap12", cols.N, cols, colsT, 1, g.b, rowsK, pos),
		m.k1("lsf_swap12", gT.N, st.in[1].buf, gT, 1, g.b, g.o, pos), mm), nil
}
