package cuda

import "math"

func init() {
	fakeKernels["lsf_ltc_synapses"] = fakeLTCSynapses
	fakeKernels["lsf_ltc_synapses_grad_v"] = fakeLTCSynapsesGradV
	fakeKernels["lsf_ltc_synapses_grad_p"] = fakeLTCSynapsesGradP
	fakeKernels["lsf_div_row"] = func(a kargs) {
		x, y, o, m := a.p(0), a.p(1), a.p(2), a.i(4)
		for i := range a.i(3) {
			o[i] = x[i] / y[i%m]
		}
	}
	fakeKernels["lsf_softplus"] = unary32(func(x float32) float32 {
		if x > 20 {
			return x
		}
		return float32(math.Log1p(float64(exp32(x))))
	})
	fakeKernels["lsf_softplus_grad"] = zip32(func(x, g float32) float32 {
		if x > 20 {
			return g
		}
		z := exp32(x)
		return g * (z / (z + 1))
	})
}

// ltcSigmoid is lsf_ltc_sigmoid (kernels/ltc.cu).
func ltcSigmoid(z float32) float32 {
	if z >= 0 {
		return 1 / (1 + exp32(-z))
	}
	e := exp32(z)
	return e / (1 + e)
}

// ltcArgs are the common arguments of the LTC kernels: v, mu, sigma, w,
// erev and the sizes b, m, n (the last three arguments).
func ltcArgs(a kargs) (v, mu, sigma, w, erev []float32, b, m, n int) {
	k := len(a.args)
	return a.p(0), a.p(1), a.p(2), a.p(3), a.p(4), a.i(k - 3), a.i(k - 2), a.i(k - 1)
}

// fakeLTCSynapses is lsf_ltc_synapses: one thread per (k, j).
func fakeLTCSynapses(a kargs) {
	v, mu, sigma, w, erev, b, m, n := ltcArgs(a)
	out := a.p(5)
	for t := range b * n {
		k, j := t/n, t%n
		var num, den float32
		for i := range m {
			p := i*n + j
			act := w[p] * ltcSigmoid(sigma[p]*(v[k*m+i]-mu[p]))
			num += act * erev[p]
			den += act
		}
		out[k*2*n+j], out[k*2*n+n+j] = num, den
	}
}

// fakeLTCSynapsesGradV is lsf_ltc_synapses_grad_v: one thread per (k, i).
func fakeLTCSynapsesGradV(a kargs) {
	v, mu, sigma, w, erev, b, m, n := ltcArgs(a)
	g, dv := a.p(5), a.p(6)
	for t := range b * m {
		k, i := t/m, t%m
		var acc float32
		for j := range n {
			p := i*n + j
			s := ltcSigmoid(sigma[p] * (v[t] - mu[p]))
			dA := g[k*2*n+j]*erev[p] + g[k*2*n+n+j]
			dz := dA * w[p] * s * (1 - s)
			acc += dz * sigma[p]
		}
		dv[t] = acc
	}
}

// fakeLTCSynapsesGradP is lsf_ltc_synapses_grad_p: one thread per synapse.
func fakeLTCSynapsesGradP(a kargs) {
	v, mu, sigma, w, erev, b, m, n := ltcArgs(a)
	g, dp := a.p(5), a.p(6)
	mn := m * n
	for p := range mn {
		i, j := p/n, p%n
		var dmu, dsigma, dw, derev float32
		for k := range b {
			diff := v[k*m+i] - mu[p]
			s := ltcSigmoid(sigma[p] * diff)
			act := w[p] * s
			gn, gd := g[k*2*n+j], g[k*2*n+n+j]
			dA := gn*erev[p] + gd
			dw += dA * s
			derev += gn * act
			dz := dA * w[p] * s * (1 - s)
			dsigma += dz * diff
			dmu -= dz * sigma[p]
		}
		dp[p], dp[mn+p], dp[2*mn+p], dp[3*mn+p] = dmu, dsigma, dw, derev
	}
}
