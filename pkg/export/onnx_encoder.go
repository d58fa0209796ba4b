package export

import (
	"github.com/lsfuse/lsfuse/pkg/model"
)

// The liquid-spiking encoder of pkg/model as ONNX nodes, its recurrences
// unrolled over the T = num_spike_steps steps (and, for LTC, over the ODE
// unfolds of every step). cfg is the encoder's resolved configuration
// (model.ModalityEncoder.Config).

// encoder adds the modality encoder of cfg to x [B, input_dim] under s
// (the modality's "encoder" scope): proj → spiking layers → liquid cell →
// out. It returns the feature [B, encoder_dim] and the last spiking
// layer's T spike vectors [B, spiking_units].
func encoder(s scope, cfg model.EncoderConfig, x value) (feature value, spikes []value) {
	p := linear(s.sub("proj"), x, cfg.EncoderDim, true)
	spikes = spikingEncoder(s.sub("spiking"), cfg, p)
	var h value
	switch cfg.Backbone {
	case model.BackboneCfC:
		cell, err := model.NewCfC(cfg.CfCConfig())
		if err != nil {
			s.fail("modality %q: %v", cfg.Name, err)
			return value{}, nil
		}
		h = cfc(s.sub(model.BackboneCfC), cell.Config(), spikes)
	case model.BackboneLTC:
		cell, err := model.NewLTC(cfg.LTCConfig())
		if err != nil {
			s.fail("modality %q: %v", cfg.Name, err)
			return value{}, nil
		}
		h = ltc(s.sub(model.BackboneLTC), cell.Config(), spikes)
	default:
		s.fail("modality %q: liquid backbone %q is not supported by the ONNX exporter", cfg.Name, cfg.Backbone)
		return value{}, nil
	}
	return linear(s.sub("out"), h, cfg.EncoderDim, true), spikes
}

// spikingEncoder is model.SpikingEncoder: layer l ("lif<l>") is a Linear
// "fc" and LIF neurons; layer 1's current is fed at every step (direct
// coding), layer l ≥ 2 gets fc of layer l−1's spikes at each step. It
// returns the last layer's T spike vectors.
func spikingEncoder(s scope, cfg model.EncoderConfig, x value) []value {
	layers, steps := cfg.SpikingLayers, cfg.NumSpikeSteps
	if layers < 1 || steps < 1 {
		s.fail("modality %q: spiking_layers %d and num_spike_steps %d must be ≥ 1", cfg.Name, layers, steps)
		return nil
	}
	var prev []value
	for l := 0; l < layers; l++ {
		width := 2 * cfg.SpikingUnits
		if l == layers-1 {
			width = cfg.SpikingUnits
		}
		lc := s.subf("lif%d", l+1)
		var currents []value
		if l == 0 {
			currents = []value{linear(lc.sub("fc"), x, width, true)}
		} else {
			for _, spk := range prev {
				currents = append(currents, linear(lc.sub("fc"), spk, width, true))
			}
		}
		prev = lif(lc, cfg, width, currents, steps)
	}
	return prev
}

// lif is model.LIF unrolled: with U_0 = 0 and, per step,
//
//	r_t = H(U_{t−1} − θ)
//	U_t = β·U_{t−1} + I_t − r_t·θ  (subtract) | β·(1−r_t)·U_{t−1} + I_t  (zero) | β·U_{t−1} + I_t  (none)
//	S_t = g·H(U_t − θ)
//
// where H is Greater(·, 0) + Cast. It returns S_1…S_T.
func lif(s scope, cfg model.EncoderConfig, units int, currents []value, steps int) []value {
	if s.failed() {
		return nil
	}
	beta := s.b.scalar(cfg.Beta)
	if cfg.LearnBeta {
		beta = s.op("Clip", []value{s.param("beta", units), s.b.scalar(0), s.b.scalar(1)}, tFloat, []int{units})
	}
	theta := s.b.scalar(cfg.Threshold)
	if cfg.LearnThreshold {
		theta = s.param("threshold", units)
	}
	var graded value
	if cfg.GradedSpikes {
		graded = s.param("graded_spikes", units)
	}
	switch cfg.Reset {
	case model.ResetSubtract, model.ResetZero, model.ResetNone:
	default:
		s.fail("modality %q: LIF reset %q is not supported by the ONNX exporter", cfg.Name, cfg.Reset)
		return nil
	}
	var mem, shift value // U_{t−1} and U_{t−1} − θ; unset before the first step (U_0 = 0)
	if cfg.LearnThreshold {
		// r_1 = H(0 − θ) is not known to be 0 with a learnable θ.
		mem = s.zerosBatch(currents[0], units)
		shift = s.sub2(mem, theta)
	}
	out := make([]value, 0, steps)
	for t := 0; t < steps; t++ {
		cur := currents[0]
		if len(currents) > 1 {
			cur = currents[t]
		}
		u := cur
		if mem.name != "" {
			switch cfg.Reset {
			case model.ResetZero:
				keep := s.cast(s.unary("Not", s.binary("Greater", shift, s.b.scalar(0), tBool)), tFloat)
				u = s.add(s.mul(s.mul(keep, mem), beta), cur)
			case model.ResetSubtract:
				u = s.sub2(s.add(s.mul(mem, beta), cur), s.mul(s.greaterZero(shift), theta))
			default:
				u = s.add(s.mul(mem, beta), cur)
			}
		}
		shift = s.sub2(u, theta)
		spk := s.greaterZero(shift)
		if cfg.GradedSpikes {
			spk = s.mul(spk, graded)
		}
		mem = u
		out = append(out, spk)
	}
	return out
}

// cfc is model.CfC of cfg (defaults resolved) run over xs from h_0 = 0;
// it returns h_T.
func cfc(s scope, cfg model.CfCConfig, xs []value) value {
	if s.failed() || len(xs) == 0 {
		return value{}
	}
	switch cfg.Mode {
	case model.CfCDefault, model.CfCNoGate, model.CfCPure:
	default:
		s.fail("CfC mode %q is not supported by the ONNX exporter", cfg.Mode)
		return value{}
	}
	h := s.zerosBatch(xs[0], cfg.Units)
	for _, x := range xs {
		h = cfcStep(s, cfg, x, h)
	}
	return h
}

// cfcStep is one CfC update (ncps CfCCell):
//
//	b = act(W_k·…act(W_1·[x; h] + c_1)…)   ("backbone.<i>", ncps' Sequential indices)
//	f1 = ff1(b), f2 = ff2(b), σ = sigmoid(time_a(b)·ts + time_b(b))
//	default: tanh(f1)·(1 − σ) + σ·tanh(f2);  no_gate: tanh(f1) + σ·tanh(f2)
//	pure:    −A·exp(−ts·(|w_τ| + |f1|))·f1 + A
func cfcStep(s scope, cfg model.CfCConfig, x, h value) value {
	units := cfg.Units
	b := s.concat(1, x, h)
	idx := 0
	for l := 0; l < cfg.BackboneLayers; l++ {
		b = linear(s.subf("backbone.%d", idx), b, cfg.BackboneUnits, true)
		b = activation(s, cfg.BackboneActivation, b)
		idx += 2
		if l > 0 && cfg.BackboneDropout > 0 {
			idx++ // the Dropout module's index
		}
	}
	ts := s.b.scalar(cfg.ElapsedTime)
	f1 := linear(s.sub("ff1"), b, units, true)
	if cfg.Mode == model.CfCPure {
		wTau, a := s.param("w_tau", 1, units), s.param("A", 1, units)
		e := s.mul(s.add(s.unary("Abs", f1), s.unary("Abs", wTau)), ts)
		e = s.unary("Exp", s.unary("Neg", e))
		e = s.mul(s.mul(e, f1), a)
		return s.unary("Neg", s.sub2(e, a))
	}
	f2 := s.unary("Tanh", linear(s.sub("ff2"), b, units, true))
	ta := linear(s.sub("time_a"), b, units, true)
	tb := linear(s.sub("time_b"), b, units, true)
	f1 = s.unary("Tanh", f1)
	gate := s.unary("Sigmoid", s.add(s.mul(ta, ts), tb))
	gated := s.mul(gate, f2)
	if cfg.Mode == model.CfCDefault {
		f1 = s.mul(f1, s.sub2(s.b.scalar(1), gate))
	}
	return s.add(f1, gated)
}

// ltc is model.LTC of cfg (defaults resolved: ncps LTCCell, fully
// connected, softplus constraints) run over xs from v_0 = 0; it returns
// the mapped output of the last step.
func ltc(s scope, cfg model.LTCConfig, xs []value) value {
	if s.failed() || len(xs) == 0 {
		return value{}
	}
	n, m, unfolds := cfg.Units, cfg.InputSize, cfg.ODEUnfolds
	softplus := func(v value) value { return s.unary("Softplus", v) }
	gleak := softplus(s.param("gleak", n))
	vleak := s.param("vleak", n)
	cm := softplus(s.param("cm", n))
	sigma, mu := s.param("sigma", n, n), s.param("mu", n, n)
	w, erev := softplus(s.param("w", n, n)), s.param("erev", n, n)
	sSigma, sMu := s.param("sensory_sigma", m, n), s.param("sensory_mu", m, n)
	sW, sErev := softplus(s.param("sensory_w", m, n)), s.param("sensory_erev", m, n)
	inW, inB := s.param("input_w", m), s.param("input_b", m)
	outW, outB := s.param("output_w", n), s.param("output_b", n)
	cmT := s.div(cm, s.b.scalar(cfg.ElapsedTime/float64(unfolds)))
	gleakVleak := s.mul(gleak, vleak)
	denomConst := s.add(cmT, gleak)
	eps := s.b.scalar(cfg.Epsilon)

	v := s.zerosBatch(xs[0], n)
	var out value
	for _, x := range xs {
		xm := s.add(s.mul(x, inW), inB)
		numS, denS := synapses(s, xm, sMu, sSigma, sW, sErev)
		for k := 0; k < unfolds; k++ {
			num, den := synapses(s, v, mu, sigma, w, erev)
			num, den = s.add(num, numS), s.add(den, denS)
			numer := s.add(s.add(s.mul(v, cmT), gleakVleak), num)
			denom := s.add(s.add(den, denomConst), eps)
			v = s.div(numer, denom)
		}
		out = s.add(s.mul(v, outW), outB)
	}
	return out
}

// synapses returns num_j = Σ_i a_ij·erev_ij and den_j = Σ_i a_ij with
// a_ij = w_ij·sigmoid(sigma_ij·(v_i − mu_ij)), for v [B, M] and
// parameters [M, N]: the [B, M, N] activations, reduced over M.
func synapses(s scope, v, mu, sigma, w, erev value) (num, den value) {
	d := s.sub2(s.unsqueeze(v, 2), mu)
	a := s.mul(w, s.unary("Sigmoid", s.mul(sigma, d)))
	num = s.reduce("ReduceSum", s.mul(a, erev), false, 1)
	den = s.reduce("ReduceSum", a, false, 1)
	return num, den
}
