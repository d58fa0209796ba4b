#!/usr/bin/env python3
"""Golden parity vectors for lsfuse's spiking and liquid layers.

Implements the reference equations of DESIGN.md §1 in plain PyTorch (float64,
autograd, custom autograd.Function surrogates) and writes inputs, weights,
outputs and gradients to testdata/golden/*.json. The Go tests in pkg/model
load these files, build the same weights into a float64 store and compare.

    /usr/bin/python3 scripts/golden.py            # Debian python3-torch

Cases (small fixed sizes, fixed seeds):
  lif.json      snnTorch Leaky semantics (reset_delay=True), each reset mode
                (subtract, zero, none) x each surrogate (fast_sigmoid, atan,
                sigmoid, triangular, straight_through), per-neuron learnable
                beta (clamped to [0,1]; two neurons outside the range),
                threshold and graded-spike factor; plus one case per reset
                mode with fixed scalar beta/threshold. Spikes, membranes and
                the gradients of a probe loss w.r.t. the input current, beta,
                threshold and the graded factor.
  cfc.json      ncps CfCCell, modes default / no_gate / pure, 2 backbone
                layers, lecun_tanh, elapsed time ts != 1 for two modes:
                states over T steps from h0 = 0 and gradients of every weight
                and every input.
  ltc.json      ncps LTCCell, fully connected wiring, 6 ODE unfolds, implicit
                (softplus) constraints, affine input/output mapping: outputs
                over T steps from v0 = 0 and gradients.
  encoder.json  bench-small's ModalityEncoder at toy size: proj Linear ->
                Linear + LIF (beta .95, thr 1, fast_sigmoid 25, subtract) ->
                CfC (default mode, 1 backbone layer) -> out Linear.

The CI never runs this script; the JSON files are checked in. Re-run it only
when the reference equations change.
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "golden")


# ----------------------------------------------------------------------------- surrogates
def surrogate_deriv(kind, k, x):
    """s(x), the surrogate derivative of H at x (see pkg/nn/spike.go)."""
    if kind == "fast_sigmoid":
        return 1.0 / (1.0 + k * x.abs()) ** 2
    if kind == "atan":
        return k / 2.0 / (1.0 + (math.pi / 2.0 * k * x) ** 2)
    if kind == "sigmoid":
        s = torch.sigmoid(k * x)
        return k * s * (1.0 - s)
    if kind == "triangular":
        return k * torch.clamp(1.0 - k * x.abs(), min=0.0)
    if kind == "straight_through":
        return torch.ones_like(x)
    raise ValueError(kind)


DEFAULT_SLOPE = {"fast_sigmoid": 25.0, "atan": 2.0, "sigmoid": 25.0, "triangular": 1.0, "straight_through": 1.0}


class Spike(torch.autograd.Function):
    """Heaviside forward (strict x > 0, as snnTorch); surrogate backward."""

    @staticmethod
    def forward(ctx, x, kind, k):
        ctx.save_for_backward(x)
        ctx.kind, ctx.k = kind, k
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * surrogate_deriv(ctx.kind, ctx.k, x), None, None


# ----------------------------------------------------------------------------- LIF
def lif_run(cur, beta, thr, graded, reset, kind, k, T):
    """snnTorch Leaky (reset_delay=True) with U_0 = 0 and a detached reset."""
    mem = torch.zeros_like(cur)
    spikes, mems, margins = [], [], []
    for _ in range(T):
        r = (mem - thr > 0).to(cur.dtype).detach()  # H(U_{t-1} - theta), detached
        b = beta.clamp(0.0, 1.0) if isinstance(beta, torch.Tensor) else beta
        if reset == "subtract":
            mem = b * mem + cur - r * thr
        elif reset == "zero":
            mem = b * ((1.0 - r) * mem) + cur
        else:
            mem = b * mem + cur
        spk = Spike.apply(mem - thr, kind, k)
        if graded is not None:
            spk = spk * graded
        spikes.append(spk)
        mems.append(mem)
        margins.append(float((mem - thr).abs().min()))
    return spikes, mems, min(margins)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


def lif_cases():
    B, N, T = 3, 5, 6
    cases = []
    combos = [(r, s, True) for r in ("subtract", "zero", "none")
              for s in ("fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through")]
    combos += [(r, "fast_sigmoid", False) for r in ("subtract", "zero", "none")]
    for i, (reset, kind, learn) in enumerate(combos):
        g = torch.Generator().manual_seed(100 + i)
        k = DEFAULT_SLOPE[kind]
        cur = (torch.rand(B, N, generator=g) * 1.6 - 0.2).requires_grad_(True)
        probe_s = torch.randn(T, B, N, generator=g)
        probe_u = torch.randn(B, N, generator=g)
        if learn:
            beta = torch.tensor([0.9, 0.5, 1.05, 0.7, -0.1], requires_grad=True)  # 1.05 and -0.1 are clamped
            thr = torch.tensor([1.0, 0.8, 1.2, 0.6, 0.9], requires_grad=True)
            graded = torch.tensor([1.0, 1.5, 0.7, 1.2, 0.9], requires_grad=True)
            beta_v, thr_v = beta, thr
        else:
            beta, thr, graded = 0.95, 1.0, None
            beta_v, thr_v = beta, thr
        spikes, mems, margin = lif_run(cur, beta_v, thr_v, graded, reset, kind, k, T)
        assert margin > 1e-6, f"membrane too close to threshold in case {i}: {margin}"
        loss = sum((probe_s[t] * spikes[t]).sum() for t in range(T)) + (probe_u * mems[-1]).sum()
        wrt = [cur] + ([beta, thr, graded] if learn else [])
        grads = torch.autograd.grad(loss, wrt)
        case = {
            "name": f"{reset}/{kind}/{'learn' if learn else 'fixed'}",
            "reset": reset, "surrogate": kind, "slope": k, "learn": learn,
            "batch": B, "units": N, "steps": T,
            "current": flat(cur),
            "probe_spikes": [flat(p) for p in probe_s], "probe_membrane": flat(probe_u),
            "spikes": [flat(s) for s in spikes], "membranes": [flat(m) for m in mems],
            "loss": float(loss),
            "grads": {"current": flat(grads[0])},
        }
        if learn:
            case["beta"], case["threshold"], case["graded"] = flat(beta), flat(thr), flat(graded)
            case["grads"].update({"beta": flat(grads[1]), "threshold": flat(grads[2]), "graded": flat(grads[3])})
        else:
            case["beta"], case["threshold"] = beta, thr
        cases.append(case)
    return cases


# ----------------------------------------------------------------------------- CfC
def lecun_tanh(x):
    return 1.7159 * torch.tanh(0.666 * x)


class CfCCell(torch.nn.Module):
    """ncps CfCCell (torch), written out: backbone Sequential of
    [Linear, act, (Linear, act, Dropout)...], heads ff1/ff2/time_a/time_b,
    pure mode's w_tau and A; xavier_uniform_ on every 2-D parameter."""

    def __init__(self, in_size, hidden, mode, bb_units, bb_layers):
        super().__init__()
        self.mode = mode
        layers = [torch.nn.Linear(in_size + hidden, bb_units), torch.nn.Identity()]
        for _ in range(1, bb_layers):
            layers += [torch.nn.Linear(bb_units, bb_units), torch.nn.Identity()]
        self.backbone = torch.nn.Sequential(*layers)
        self.ff1 = torch.nn.Linear(bb_units, hidden)
        if mode == "pure":
            self.w_tau = torch.nn.Parameter(torch.zeros(1, hidden))
            self.A = torch.nn.Parameter(torch.ones(1, hidden))
        else:
            self.ff2 = torch.nn.Linear(bb_units, hidden)
            self.time_a = torch.nn.Linear(bb_units, hidden)
            self.time_b = torch.nn.Linear(bb_units, hidden)
        for w in self.parameters():
            if w.dim() == 2:
                torch.nn.init.xavier_uniform_(w)

    def forward(self, x, h, ts):
        z = torch.cat([x, h], 1)
        for m in self.backbone:
            if isinstance(m, torch.nn.Linear):
                z = lecun_tanh(m(z))
        ff1 = self.ff1(z)
        if self.mode == "pure":
            return -self.A * torch.exp(-ts * (torch.abs(self.w_tau) + torch.abs(ff1))) * ff1 + self.A
        ff1 = torch.tanh(ff1)
        ff2 = torch.tanh(self.ff2(z))
        ti = torch.sigmoid(self.time_a(z) * ts + self.time_b(z))
        if self.mode == "no_gate":
            return ff1 + ti * ff2
        return ff1 * (1.0 - ti) + ti * ff2


def named(module, prefix):
    return {f"{prefix}.{n}": p for n, p in module.named_parameters()}


def tensors_json(d):
    return {n: {"shape": list(p.shape), "data": flat(p)} for n, p in d.items()}


def cfc_cases():
    B, IN, H, BU, BL, T = 2, 3, 4, 5, 2, 3
    cases = []
    for i, (mode, ts) in enumerate((("default", 1.0), ("no_gate", 0.7), ("pure", 1.3))):
        torch.manual_seed(200 + i)
        cell = CfCCell(IN, H, mode, BU, BL)
        xs = [torch.randn(B, IN).requires_grad_(True) for _ in range(T)]
        probes = [torch.randn(B, H) for _ in range(T)]
        h = torch.zeros(B, H)
        states = []
        for x in xs:
            h = cell(x, h, ts)
            states.append(h)
        loss = sum((p * s).sum() for p, s in zip(probes, states))
        params = named(cell, "cfc")
        names = sorted(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names] + xs)
        cases.append({
            "name": mode, "mode": mode, "elapsed_time": ts,
            "batch": B, "input_size": IN, "units": H, "backbone_units": BU, "backbone_layers": BL, "steps": T,
            "params": tensors_json(params),
            "inputs": [flat(x) for x in xs], "probes": [flat(p) for p in probes],
            "outputs": [flat(s) for s in states], "loss": float(loss),
            "grads": {**{n: flat(g) for n, g in zip(names, grads)},
                      **{f"x{t}": flat(g) for t, g in enumerate(grads[len(names):])}},
        })
    return cases


# ----------------------------------------------------------------------------- LTC
class LTCCell(torch.nn.Module):
    """ncps LTCCell (torch) with a FullyConnected wiring (all synapses, self
    connections included), implicit (softplus) constraints, affine mappings."""

    def __init__(self, in_size, units, unfolds, gen):
        super().__init__()
        self.unfolds, self.eps = unfolds, 1e-8

        def u(shape, lo, hi):
            return torch.nn.Parameter(torch.rand(*shape, generator=gen) * (hi - lo) + lo)

        def polarity(shape):
            return torch.nn.Parameter(torch.where(torch.rand(*shape, generator=gen) < 1 / 3, -1.0, 1.0))

        N, M = units, in_size
        self.gleak, self.vleak, self.cm = u((N,), 0.001, 1.0), u((N,), -0.2, 0.2), u((N,), 0.4, 0.6)
        self.sigma, self.mu, self.w = u((N, N), 3, 8), u((N, N), 0.3, 0.8), u((N, N), 0.001, 1.0)
        self.erev = polarity((N, N))
        self.sensory_sigma, self.sensory_mu = u((M, N), 3, 8), u((M, N), 0.3, 0.8)
        self.sensory_w, self.sensory_erev = u((M, N), 0.001, 1.0), polarity((M, N))
        # Perturb the identity mappings so their gradients are not trivial.
        self.input_w = torch.nn.Parameter(1.0 + 0.1 * torch.randn(M, generator=gen))
        self.input_b = torch.nn.Parameter(0.1 * torch.randn(M, generator=gen))
        self.output_w = torch.nn.Parameter(1.0 + 0.1 * torch.randn(N, generator=gen))
        self.output_b = torch.nn.Parameter(0.1 * torch.randn(N, generator=gen))

    @staticmethod
    def _sigmoid(v, mu, sigma):
        return torch.sigmoid(sigma * (v.unsqueeze(-1) - mu))

    def forward(self, x, v, ts):
        sp = torch.nn.functional.softplus
        x = x * self.input_w + self.input_b
        sw = sp(self.sensory_w) * self._sigmoid(x, self.sensory_mu, self.sensory_sigma)
        num_s = (sw * self.sensory_erev).sum(1)
        den_s = sw.sum(1)
        cm_t = sp(self.cm) / (ts / self.unfolds)
        w = sp(self.w)
        gleak = sp(self.gleak)
        for _ in range(self.unfolds):
            wa = w * self._sigmoid(v, self.mu, self.sigma)
            num = (wa * self.erev).sum(1) + num_s
            den = wa.sum(1) + den_s
            v = (cm_t * v + gleak * self.vleak + num) / (cm_t + gleak + den + self.eps)
        return v * self.output_w + self.output_b, v


def ltc_cases():
    B, IN, N, T = 2, 3, 4, 3
    cases = []
    for i, ts in enumerate((1.0, 0.6)):
        gen = torch.Generator().manual_seed(300 + i)
        cell = LTCCell(IN, N, 6, gen)
        xs = [torch.randn(B, IN, generator=gen).requires_grad_(True) for _ in range(T)]
        probes = [torch.randn(B, N, generator=gen) for _ in range(T)]
        v = torch.zeros(B, N)
        outs = []
        for x in xs:
            o, v = cell(x, v, ts)
            outs.append(o)
        loss = sum((p * o).sum() for p, o in zip(probes, outs))
        params = named(cell, "ltc")
        names = sorted(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names] + xs)
        cases.append({
            "name": f"ts={ts}", "elapsed_time": ts, "ode_unfolds": 6,
            "batch": B, "input_size": IN, "units": N, "steps": T,
            "params": tensors_json(params),
            "inputs": [flat(x) for x in xs], "probes": [flat(p) for p in probes],
            "outputs": [flat(o) for o in outs], "loss": float(loss),
            "grads": {**{n: flat(g) for n, g in zip(names, grads)},
                      **{f"x{t}": flat(g) for t, g in enumerate(grads[len(names):])}},
        })
    return cases


# ----------------------------------------------------------------------------- encoder
def encoder_cases():
    """bench-small's ModalityEncoder (ref_torch.py) at toy size."""
    B, IN, D, S, L, T = 2, 6, 5, 4, 3, 5
    torch.manual_seed(400)
    proj = torch.nn.Linear(IN, D)
    fc = torch.nn.Linear(D, S)
    with torch.no_grad():
        fc.weight.mul_(3.0)  # enough current that some neurons fire
        fc.bias.add_(0.6)
    cfc = CfCCell(S, L, "default", L, 1)
    out = torch.nn.Linear(L, D)
    x = torch.randn(B, IN).requires_grad_(True)
    probe = torch.randn(B, D)
    cur = fc(proj(x))
    spikes, mems, margin = lif_run(cur, 0.95, 1.0, None, "subtract", "fast_sigmoid", 25.0, T)
    assert margin > 1e-6, margin
    h = torch.zeros(B, L)
    for s in spikes:
        h = cfc(s, h, 1.0)
    feat = out(h)
    loss = (probe * feat).sum()
    params = {**named(proj, "enc.proj"), **named(fc, "enc.spiking.lif1.fc"), **named(cfc, "enc.cfc"),
              **named(out, "enc.out")}
    names = sorted(params)
    grads = torch.autograd.grad(loss, [params[n] for n in names] + [x])
    n_spikes = sum(float(s.sum()) for s in spikes)
    assert 0 < n_spikes < B * S * T, n_spikes
    return [{
        "name": "bench-small-toy", "batch": B, "input_dim": IN, "encoder_dim": D, "spiking_units": S,
        "liquid_units": L, "backbone_units": L, "steps": T,
        "params": tensors_json(params), "input": flat(x), "probe": flat(probe),
        "spikes": [flat(s) for s in spikes], "feature": flat(feat), "loss": float(loss),
        "grads": {**{n: flat(g) for n, g in zip(names, grads)}, "x": flat(grads[-1])},
    }]


def bench_encoder_params():
    """Parameter count of one bench-small ModalityEncoder (ref_torch.py)."""
    d, lif, hid, bb = 128, 64, 64, 64
    lin = lambda i, o: i * o + o  # noqa: E731
    return lin(d, d) + lin(d, lif) + lin(lif + hid, bb) + 4 * lin(bb, hid) + lin(hid, d)


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {"torch": torch.__version__, "dtype": "float64", "script": "scripts/golden.py"}
    files = {
        "lif.json": {"meta": meta, "cases": lif_cases()},
        "cfc.json": {"meta": meta, "cases": cfc_cases()},
        "ltc.json": {"meta": meta, "cases": ltc_cases()},
        "encoder.json": {"meta": meta, "bench_encoder_params": bench_encoder_params(), "cases": encoder_cases()},
    }
    for name, obj in files.items():
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            json.dump(obj, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
