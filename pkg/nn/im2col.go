package nn

import (
	"fmt"
	"strings"
)

// convGeom is the geometry of a convolution or pooling window over one to
// three spatial axes. Internally every case is 3-d: a 1-d input [B,C,L] is
// [B,C,1,1,L] and a 2-d input [B,C,H,W] is [B,C,1,H,W]; the unused leading
// axes have size 1, kernel 1, stride 1, padding 0.
type convGeom struct {
	nd                    int // number of real spatial axes (1, 2 or 3)
	batch, inC, outC, grp int
	in, k, stride, pad    [3]int
	dil, out              [3]int
}

// axisNames names the spatial axes of an nd-dimensional input in messages.
var axisNames = [4][]string{nil, {"L"}, {"H", "W"}, {"D", "H", "W"}}

// newConvGeom validates the window settings for nd spatial axes against an
// input of shape [B, C, spatial...] and computes the output size:
// out = floor((in + 2·pad − dil·(k−1) − 1) / stride) + 1 on every axis, as
// PyTorch. inC 0 accepts any channel count and outC 0 means outC = C
// (pooling). The error does not carry the layer's scope; callers add it.
func newConvGeom(layer string, nd int, shape []int, inC, outC, groups int, k, stride, pad, dil []int) (*convGeom, error) {
	if len(shape) != nd+2 {
		return nil, fmt.Errorf("%s expects %s, got %s", layer, shapePattern(nd, inC), shapeString(shape))
	}
	if inC > 0 && shape[1] != inC {
		return nil, fmt.Errorf("%s expects %s, got %s", layer, shapePattern(nd, inC), shapeString(shape))
	}
	for i, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("%s: input shape %s has a non-positive axis %d", layer, shapeString(shape), i)
		}
	}
	g := &convGeom{nd: nd, batch: shape[0], inC: shape[1], outC: outC, grp: groups}
	if outC == 0 { // pooling: one output plane per input plane
		g.outC = shape[1]
	}
	for i := 0; i < 3; i++ {
		g.in[i], g.k[i], g.stride[i], g.dil[i], g.out[i] = 1, 1, 1, 1, 1
	}
	names := axisNames[nd]
	for j := 0; j < nd; j++ {
		i := 3 - nd + j
		g.in[i], g.k[i], g.stride[i], g.pad[i], g.dil[i] = shape[2+j], k[j], stride[j], pad[j], dil[j]
		switch {
		case k[j] <= 0:
			return nil, fmt.Errorf("%s: kernel size must be positive, got %d", layer, k[j])
		case stride[j] <= 0:
			return nil, fmt.Errorf("%s: stride must be positive, got %d", layer, stride[j])
		case pad[j] < 0:
			return nil, fmt.Errorf("%s: padding must be non-negative, got %d", layer, pad[j])
		case dil[j] <= 0:
			return nil, fmt.Errorf("%s: dilation must be positive, got %d", layer, dil[j])
		}
		span := dil[j]*(k[j]-1) + 1
		padded := shape[2+j] + 2*pad[j]
		if span > padded {
			return nil, fmt.Errorf("%s: kernel spans %d on axis %s but the padded input has %d (%d + 2·padding %d); input %s",
				layer, span, names[j], padded, shape[2+j], pad[j], shapeString(shape))
		}
		g.out[i] = (padded-span)/stride[j] + 1
	}
	return g, nil
}

// repeatInt returns n copies of v: one setting for every spatial axis.
func repeatInt(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// shapeString renders a shape as in PyTorch-style messages: [2,1,28,28].
func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// shapePattern renders the expected input shape, e.g. "[B,3,H,W]".
func shapePattern(nd, c int) string {
	ch := "C"
	if c > 0 {
		ch = fmt.Sprint(c)
	}
	return "[B," + ch + "," + strings.Join(axisNames[nd], ",") + "]"
}

func (g *convGeom) inSize() int  { return g.in[0] * g.in[1] * g.in[2] }
func (g *convGeom) outSize() int { return g.out[0] * g.out[1] * g.out[2] }
func (g *convGeom) kSize() int   { return g.k[0] * g.k[1] * g.k[2] }

// colRows is the number of rows of one group's column matrix: input
// channels per group × kernel positions.
func (g *convGeom) colRows() int { return g.inC / g.grp * g.kSize() }

// pointwise reports whether the column matrix of a group is the input
// itself (1×1 kernel, stride 1, no padding), so im2col can be skipped.
func (g *convGeom) pointwise() bool {
	for i := 0; i < 3; i++ {
		if g.k[i] != 1 || g.stride[i] != 1 || g.pad[i] != 0 {
			return false
		}
	}
	return true
}

// spatial returns the real spatial sizes of a 3-d triple (the last nd).
func (g *convGeom) spatial(v [3]int) []int { return append([]int(nil), v[3-g.nd:]...) }

// String describes the window, used in kernel names (which must include
// every parameter: Gorgonia merges nodes with equal op hashes).
func (g *convGeom) String() string {
	return fmt.Sprintf("in=%dx%v,out=%d,k=%v,s=%v,p=%v,d=%v,g=%d",
		g.inC, g.spatial(g.in), g.outC, g.spatial(g.k), g.spatial(g.stride), g.spatial(g.pad), g.spatial(g.dil), g.grp)
}

// validRange returns the output positions [lo, hi) of an axis with count
// outputs whose input index o·stride + off falls inside [0, n).
func validRange(count, stride, off, n int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if last := n - 1 - off; last >= 0 {
		hi = last/stride + 1
	}
	if hi > count {
		hi = count
	}
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// im2col writes the column matrix of one batch item and one group: x holds
// the group's input channels [C/groups, D, H, W] (row-major, starting at the
// group's first channel) and col receives [C/groups·kd·kh·kw, OD·OH·OW],
// row (c, kd, kh, kw), column (od, oh, ow), zero where the window reads
// padding. This row order matches the weight layout [OutC, C/groups, k...].
func im2col[T Float](g *convGeom, x, col []T) {
	walkCols(g, x, col, func(dst, src []T) { copy(dst, src) },
		func(dst []T, src []T, lo, hi, stride, off int) {
			for o := lo; o < hi; o++ {
				dst[o] = src[o*stride+off]
			}
		}, true)
}

// col2im is the adjoint of im2col: it adds every column entry back into the
// input position it was read from (padding entries are dropped).
func col2im[T Float](g *convGeom, col, x []T) {
	walkCols(g, x, col, func(dst, src []T) {
		for i, v := range dst {
			src[i] += v
		}
	}, func(dst []T, src []T, lo, hi, stride, off int) {
		for o := lo; o < hi; o++ {
			src[o*stride+off] += dst[o]
		}
	}, false)
}

// walkCols visits the (column segment, input row) pairs of the im2col
// mapping. contiguous handles stride-1 segments (dst and src of equal
// length), strided handles the rest; zero clears column entries that fall
// on padding (im2col) or leaves them alone (col2im).
func walkCols[T Float](g *convGeom, x, col []T,
	contiguous func(dst, src []T), strided func(dst, src []T, lo, hi, stride, off int), zero bool) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	OD, OH, OW := g.out[0], g.out[1], g.out[2]
	L := OD * OH * OW
	cg := g.inC / g.grp
	r := 0
	for c := 0; c < cg; c++ {
		xc := x[c*D*H*W : (c+1)*D*H*W]
		for kd := 0; kd < g.k[0]; kd++ {
			offD := kd*g.dil[0] - g.pad[0]
			for kh := 0; kh < g.k[1]; kh++ {
				offH := kh*g.dil[1] - g.pad[1]
				for kw := 0; kw < g.k[2]; kw++ {
					offW := kw*g.dil[2] - g.pad[2]
					lo, hi := validRange(OW, g.stride[2], offW, W)
					row := col[r*L : (r+1)*L]
					r++
					idx := 0
					for od := 0; od < OD; od++ {
						id := od*g.stride[0] + offD
						if id < 0 || id >= D {
							if zero {
								clear(row[idx : idx+OH*OW])
							}
							idx += OH * OW
							continue
						}
						for oh := 0; oh < OH; oh++ {
							ih := oh*g.stride[1] + offH
							seg := row[idx : idx+OW]
							idx += OW
							if ih < 0 || ih >= H {
								if zero {
									clear(seg)
								}
								continue
							}
							if zero {
								clear(seg[:lo])
								clear(seg[hi:])
							}
							src := xc[(id*H+ih)*W : (id*H+ih+1)*W]
							if lo >= hi {
								continue
							}
							if g.stride[2] == 1 {
								contiguous(seg[lo:hi], src[lo+offW:hi+offW])
							} else {
								strided(seg, src, lo, hi, g.stride[2], offW)
							}
						}
					}
				}
			}
		}
	}
}
