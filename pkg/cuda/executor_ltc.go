package cuda

import "strings"

// lowerLTCSynapses lowers model.LTC's synapse op (v [B, M], mu, sigma, w,
// erev [M, N]) → [B, 2N] and its packed backward (the same inputs and
// g [B, 2N]) → [1, B·M + 4·M·N] = (dv, dmu, dsigma, dw, derev) to the
// kernels of kernels/ltc.cu: one thread per output value, each summing in
// the CPU kernel's order.
func lowerLTCSynapses(m *Machine, st *xstep) (func() error, error) {
	vs, ps := st.in[0].node.Shape(), st.in[1].node.Shape()
	if vs.Dims() != 2 || ps.Dims() != 2 || vs[1] != ps[0] {
		return nil, nil
	}
	b, k, n := vs[0], ps[0], ps[1]
	v, mu, sigma, w, erev, out := st.in[0].buf, st.in[1].buf, st.in[2].buf, st.in[3].buf, st.in[4].buf, st.out.buf
	if st.fam == "LTCSynapses" {
		return m.k1("lsf_ltc_synapses", b*n, v, mu, sigma, w, erev, out, b, k, n), nil
	}
	g := st.in[5].buf
	return seq(
		m.k1("lsf_ltc_synapses_grad_v", b*k, v, mu, sigma, w, erev, g, out.at(0, b*k), b, k, n),
		m.k1("lsf_ltc_synapses_grad_p", k*n, v, mu, sigma, w, erev, g, out.at(b*k, 4*k*n), b, k, n),
	), nil
}

// lowerSoftplus covers the Softplus instances the kernels implement, the
// threshold of 20 (model.softplus); another threshold runs on the host.
func lowerSoftplus(l lowering) lowering {
	return func(m *Machine, st *xstep) (func() error, error) {
		if !strings.HasPrefix(opName(st), "Softplus{threshold=20}") {
			return nil, nil
		}
		return l(m, st)
	}
}
