package cuda

// Go transcriptions of kernels/conv3d.cu for the fake device, one loop
// iteration per CUDA thread.

func init() {
	fakeKernels["lsf_im2col3d"] = fakeIm2col3d
	fakeKernels["lsf_col2im3d"] = fakeCol2im3d
}

// vol3 is the geometry arguments of the 3-D column kernels: channel
// planes, then (depth, height, width) triples of input size, kernel,
// stride, padding, dilation and output size.
type vol3 struct {
	ch                  int
	in, k, s, p, t, out [3]int
}

// vol3Of reads the geometry from a launch's arguments 2 onwards.
func vol3Of(a kargs) vol3 {
	v := vol3{ch: a.i(2)}
	for j, t := range []*[3]int{&v.in, &v.k, &v.s, &v.p, &v.t, &v.out} {
		for i := range 3 {
			t[i] = a.i(3 + 3*j + i)
		}
	}
	return v
}

// fakeIm2col3d is lsf_im2col3d.
func fakeIm2col3d(a kargs) {
	x, cols, v := a.p(0), a.p(1), vol3Of(a)
	d, h, w := v.in[0], v.in[1], v.in[2]
	od, oh, ow := v.out[0], v.out[1], v.out[2]
	pos := od * oh * ow
	for i := 0; i < v.ch*v.k[0]*v.k[1]*v.k[2]*pos; i++ {
		p, row := i%pos, i/pos
		ox, oy, oz := p%ow, (p/ow)%oh, p/(ow*oh)
		e, b, ak, c := row%v.k[2], (row/v.k[2])%v.k[1], (row/(v.k[2]*v.k[1]))%v.k[0], row/(v.k[2]*v.k[1]*v.k[0])
		z, y, xx := oz*v.s[0]-v.p[0]+ak*v.t[0], oy*v.s[1]-v.p[1]+b*v.t[1], ox*v.s[2]-v.p[2]+e*v.t[2]
		if z >= 0 && z < d && y >= 0 && y < h && xx >= 0 && xx < w {
			cols[i] = x[((c*d+z)*h+y)*w+xx]
		} else {
			cols[i] = 0
		}
	}
}

// fakeTapToOut is lsf_tap_to_out.
func fakeTapToOut(q, k, s, p, t, n int) int {
	r := q + p - k*t
	if r < 0 || r%s != 0 || r/s >= n {
		return -1
	}
	return r / s
}

// fakeCol2im3d is lsf_col2im3d.
func fakeCol2im3d(a kargs) {
	dcols, dx, v := a.p(0), a.p(1), vol3Of(a)
	d, h, w := v.in[0], v.in[1], v.in[2]
	od, oh, ow := v.out[0], v.out[1], v.out[2]
	for i := 0; i < v.ch*d*h*w; i++ {
		xx, y, z, c := i%w, (i/w)%h, (i/(w*h))%d, i/(w*h*d)
		var s float32
		for ak := 0; ak < v.k[0]; ak++ {
			oz := fakeTapToOut(z, ak, v.s[0], v.p[0], v.t[0], od)
			if oz < 0 {
				continue
			}
			for b := 0; b < v.k[1]; b++ {
				oy := fakeTapToOut(y, b, v.s[1], v.p[1], v.t[1], oh)
				if oy < 0 {
					continue
				}
				for e := 0; e < v.k[2]; e++ {
					ox := fakeTapToOut(xx, e, v.s[2], v.p[2], v.t[2], ow)
					if ox < 0 {
						continue
					}
					row := ((c*v.k[0]+ak)*v.k[1]+b)*v.k[2] + e
					s += dcols[((row*od+oz)*oh+oy)*ow+ox]
				}
			}
		}
		dx[i] = s
	}
}
