package cuda

import (
	"errors"
	"fmt"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/nn"
)

// Machine runs a Gorgonia graph — forward, the symbolic backward G.Grad
// added, and the gradient accumulation the optimiser reads — with every
// tensor resident in GPU memory. It keeps vm.Machine's contract: the same
// steps in the same order (the reverse of G.Sort), and for each learnable
// the value of its gradient node is added after every RunAll into a
// gradient buffer bound with G.WithGrad, so w.Grad() holds the sum over
// runs until it is zeroed (DESIGN.md fact 4).
//
// Where values live:
//   - Parameters (the learnables) live on the device, in the Session,
//     uploaded once when first seen and shared by every machine of the
//     session whose node is bound to the same host tensor (the training
//     and the evaluation graph see the same weights, as on the CPU). Their
//     host tensors are stale while the device trains them: call
//     Session.Download (or Machine.Sync) before reading them —
//     checkpoints, CPU evaluation — and Session.Upload after changing
//     them on the host. Rebinding such a node with G.Let is an error.
//     Batch-norm running statistics, which training graphs update in place,
//     are resident the same way.
//   - Inputs (every other node without an op: batches, presence masks,
//     the loss scale, frozen weights) are sent on every RunAll from their
//     bound host value (bind them with G.Let as usual) — or copied on the
//     device when the value is a parameter tensor a machine of the session
//     registered after this one was built.
//   - Gradients accumulate on the device; w.Grad() is valid after Sync
//     or DownloadGrads.
//     ZeroGrads, ScaleGrads and AdamStep act on the device copies;
//     UploadGrads sends host-side changes (unscaling, clipping done on the
//     host) back.
//   - Op outputs stay on the device. After RunAll the nodes named with
//     Fetch (the loss, the model output) have host values (Node.Value);
//     Read downloads others on demand (telemetry, attention maps).
//
// Ops run as Lower plans them: embedded kernels, cuBLAS GEMMs, views that
// alias their input's buffer, constants uploaded once, or host fallbacks
// (inputs downloaded, the op's own Do run on the CPU, the output uploaded).
// Float32 graphs only. A Machine is not safe for concurrent use.
type Machine struct {
	sess  *Session
	dev   device
	train bool
	// hostOnly sends every op to the host fallback (tests of the plan).
	hostOnly bool
	// prec is the GEMM input format (MixedPrecision).
	prec Precision
	// planErr is an error of a planning helper that returns no error
	// (gemmBeta's scratch allocation); lower returns it.
	planErr error
	fetch   G.Nodes
	plan    *Plan
	// prof, when set (GPU tests), receives each step kind and family's
	// time per run; the device is synchronised around every step.
	prof map[string]time.Duration

	// resident are the non-learnable leaves ops update in place.
	resident map[*G.Node]bool

	slots  map[*G.Node]*slot
	steps  []*xstep
	inputs []*slot
	params []*slot
	grads  []*gradAcc
	out    []*slot // fetched nodes
	owned  []Buffer
	byNode map[*G.Node]*gradAcc
	// sumSq holds GradSumSquares' per-tensor sums (allocated at its
	// first call).
	sumSq Buffer
}

// slot is a node's device buffer and, when the host needs it, its host
// mirror.
type slot struct {
	node *G.Node
	buf  Buffer
	// param is set for resident parameters (buf is the session's).
	param *param
	// mutable marks a resident buffer an op updates in place (running
	// statistics): a host fallback sends its edited mirror back.
	mutable bool
	// input is set for nodes uploaded from their host value on every run
	// (and for the outputs of index steps, computed on the host).
	input bool
	// hostKnown is set when the node's bound value is its current value
	// (inputs, constants, index steps): the host reads it without a
	// download.
	hostKnown bool
	// ints marks an int32 buffer (an index input).
	ints    bool
	scratch []int32
	host    G.Value
}

// xstep is one node to execute.
type xstep struct {
	node *G.Node
	op   G.Op
	fam  string
	kind Kind
	in   []*slot
	out  *slot
	run  func() error
	// once: a shape-derived constant with inputs (sizeOp), computed on the
	// first run only.
	once, done bool
	// host fallback state: the argument list and whether the op can write
	// into its previous output.
	args []G.Value
	pre  G.UsePreallocDoer
}

// gradAcc is a learnable's gradient accumulator: a device buffer and the
// host tensor bound as the node's gradient.
type gradAcc struct {
	of, grad *G.Node
	p        *param
	acc      Buffer
	host     *tensor.Dense
	src      *slot
}

// Option configures a Machine.
type Option func(*Machine)

// EvalMode tells ops implementing G.TrainModeOp that they run for
// evaluation (vm.EvalMode).
func EvalMode() Option { return func(m *Machine) { m.train = false } }

// Fetch names the nodes whose values are downloaded after every RunAll
// and bound to them on the host (the loss and the model output).
func Fetch(nodes ...*G.Node) Option {
	return func(m *Machine) { m.fetch = append(m.fetch, nodes...) }
}

// WithSession runs the machine on s (its device and its resident
// parameters). Without it NewMachine uses DefaultSession.
func WithSession(s *Session) Option { return func(m *Machine) { m.sess = s } }

// MixedPrecision sets the input format of every GEMM the machine runs
// (Linear, matmul, conv's im2col GEMM, attention, CfC's per-step GEMMs):
// with PrecisionFP16 or PrecisionBF16 both inputs are packed into 16-bit
// scratch buffers of that format (allocated when the machine is built),
// and cuBLAS multiplies them (cublasGemmEx, cublasGemmBatchedEx) with
// float32 accumulation into float32 outputs.
// Parameters, gradients, optimiser state and activations stay float32.
// The default is PrecisionOff.
func MixedPrecision(p Precision) Option { return func(m *Machine) { m.prec = p } }

// hostFallbackOnly runs every op through the host fallback: the executor's
// bookkeeping (buffers, order, gradients) without any kernel. Tests use it
// to compare with vm.Machine exactly.
func hostFallbackOnly() Option { return func(m *Machine) { m.hostOnly = true } }

// NewMachine plans g for the GPU. learn are the parameter nodes whose
// gradients accumulate (G.Grad must already have added the gradient
// nodes); it may be empty for inference graphs. The graph must be
// float32 (int index inputs allowed) and every op must have a lowering
// (Lower): otherwise the error names what is not supported.
func NewMachine(g *G.ExprGraph, learn G.Nodes, opts ...Option) (*Machine, error) {
	m := &Machine{train: true, slots: map[*G.Node]*slot{}, byNode: map[*G.Node]*gradAcc{}}
	for _, o := range opts {
		o(m)
	}
	if m.sess == nil {
		s, err := DefaultSession()
		if err != nil {
			return nil, err
		}
		m.sess = s
	}
	m.dev = m.sess.dev
	prec, err := ParsePrecision(string(m.prec))
	if err != nil {
		return nil, err
	}
	m.prec = prec
	if err := m.build(g, learn); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Machine) build(g *G.ExprGraph, learn G.Nodes) error {
	plan, err := Lower(g)
	if err != nil {
		return err
	}
	m.plan = plan
	rules := map[*G.Node]Rule{}
	for _, s := range plan.Steps {
		rules[s.Node] = s.Rule
	}
	sorted, err := G.Sort(g)
	if err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	for _, n := range sorted {
		if indexFamilies[Family(n.Op())] {
			continue // integer results computed on the host (indexStep)
		}
		if err := checkDtype(n); err != nil {
			return err
		}
	}
	isLearn := map[*G.Node]bool{}
	for _, w := range learn {
		isLearn[w] = true
	}
	m.resident = updatedBuffers(g, plan)
	for i := len(sorted) - 1; i >= 0; i-- {
		n := sorted[i]
		op := n.Op()
		if op == nil {
			if _, err := m.leaf(n, isLearn[n], m.resident[n]); err != nil {
				return err
			}
			continue
		}
		if tm, ok := op.(G.TrainModeOp); ok {
			tm.SetTraining(m.train)
		}
		var in []*slot
		for it := g.From(n.ID()); it.Next(); {
			c := it.Node().(*G.Node)
			s, ok := m.slots[c]
			if !ok {
				return fmt.Errorf("cuda: node %s: input %s was not planned before it", n.Name(), c.Name())
			}
			in = append(in, s)
		}
		if len(in) == 0 && n.Value() != nil {
			if err := m.constant(n); err != nil {
				return err
			}
			continue
		}
		if err := m.addStep(n, rules[n], in); err != nil {
			return err
		}
	}
	for _, w := range learn {
		if err := m.addGrad(w); err != nil {
			return err
		}
	}
	for _, n := range m.fetch {
		s, ok := m.slots[n]
		if !ok {
			return fmt.Errorf("cuda: fetched node %s is not in the graph", n.Name())
		}
		m.out = append(m.out, s)
	}
	return nil
}

// updatedBuffers returns the leaves that ops of g update in place on
// every training run and that must therefore live on the device: the
// running mean and variance (inputs 3 and 4) of training batch norms.
func updatedBuffers(g *G.ExprGraph, plan *Plan) map[*G.Node]bool {
	out := map[*G.Node]bool{}
	for _, st := range plan.Steps {
		if st.Family != "BatchNorm" || field(st.Node.Op().String(), "train") != "true" {
			continue
		}
		i := 0
		for it := g.From(st.Node.ID()); it.Next(); i++ {
			if c := it.Node().(*G.Node); i >= 3 && c.Op() == nil {
				out[c] = true
			}
		}
	}
	return out
}

// checkDtype accepts float32 nodes and int (index) nodes.
func checkDtype(n *G.Node) error {
	switch n.Dtype() {
	case tensor.Float32:
		return nil
	case tensor.Int, tensor.Int32, tensor.Int64:
		if n.Op() == nil {
			return nil
		}
		return fmt.Errorf("cuda: node %s (%v) computes %v values: the CUDA executor supports integer inputs only", n.Name(), n.Op(), n.Dtype())
	case tensor.Float64:
		return fmt.Errorf("cuda: node %s is float64: the CUDA executor runs float32 graphs only (build the store with tensor.Float32)", n.Name())
	}
	return fmt.Errorf("cuda: node %s has dtype %v: the CUDA executor runs float32 graphs", n.Name(), n.Dtype())
}

// size is the number of elements of n's value (1 for a scalar).
func size(n *G.Node) int {
	if s := n.Shape(); s.Dims() > 0 {
		return s.TotalSize()
	}
	return 1
}

// alloc allocates a machine-owned buffer of n values.
func (m *Machine) alloc(n int) (Buffer, error) {
	b, err := m.dev.Alloc(max(n, 1))
	if err != nil {
		return Buffer{}, err
	}
	m.owned = append(m.owned, b)
	return b, nil
}

// leaf plans a node without an op. Learnables and the buffers ops update
// in place (batch-norm running statistics: updated) are resident
// parameters, registered in the session; a node bound to the host tensor of a
// parameter some machine of the session registered shares its buffer;
// everything else (batches, presence masks, the loss scale, frozen
// weights) is an input, sent on every run.
func (m *Machine) leaf(n *G.Node, learnable, updated bool) (*slot, error) {
	s := &slot{node: n}
	m.slots[n] = s
	v, dense := n.Value().(*tensor.Dense)
	dense = dense && n.Dtype() == tensor.Float32
	var p *param
	switch {
	case learnable && !dense:
		return nil, fmt.Errorf("cuda: learnable %s has no dense float32 value", n.Name())
	case learnable || (updated && dense):
		var err error
		if p, err = m.sess.param(v); err != nil {
			return nil, fmt.Errorf("cuda: parameter %s: %w", n.Name(), err)
		}
	case dense:
		p = m.sess.lookup(v)
	}
	if p != nil {
		s.param, s.buf, s.mutable = p, p.buf, updated
		m.params = append(m.params, s)
		return s, nil
	}
	s.input, s.hostKnown = true, true
	s.ints = n.Dtype() != tensor.Float32
	var err error
	if s.buf, err = m.alloc(size(n)); err != nil {
		return nil, err
	}
	m.inputs = append(m.inputs, s)
	return s, nil
}

// constant uploads the bound value of an op node without inputs once.
func (m *Machine) constant(n *G.Node) error {
	s := &slot{node: n, hostKnown: true}
	m.slots[n] = s
	var err error
	if s.buf, err = m.alloc(size(n)); err != nil {
		return err
	}
	v, err := floats(n.Value())
	if err != nil {
		return fmt.Errorf("cuda: constant %s: %w", n.Name(), err)
	}
	return m.dev.upload(s.buf, v)
}

// addStep plans an op node: a view aliases its input, everything else
// gets its own buffer and a run function from its lowering (or the host
// fallback).
func (m *Machine) addStep(n *G.Node, r Rule, in []*slot) error {
	st := &xstep{node: n, op: n.Op(), fam: Family(n.Op()), kind: r.Kind, in: in}
	out := &slot{node: n}
	m.slots[n] = out
	st.out = out
	if indexFamilies[st.fam] {
		return m.indexStep(st)
	}
	if r.Kind == View && len(in) == 1 && !in[0].ints && size(in[0].node) == size(n) {
		out.buf = in[0].buf
		return nil // no work: same device memory, another shape
	}
	var err error
	if out.buf, err = m.alloc(size(n)); err != nil {
		return err
	}
	m.steps = append(m.steps, st)
	if r.Kind == Const {
		st.once = true
	}
	if r.Kind != Host && r.Kind != Const && !m.hostOnly {
		run, err := m.lower(st)
		if err != nil {
			return fmt.Errorf("cuda: node %s (%v): %w", n.Name(), n.Op(), err)
		}
		if run != nil {
			st.run = run
			return nil
		}
	}
	if !st.once {
		st.kind = Host
	}
	st.args = make([]G.Value, len(in))
	if pd, ok := st.op.(G.UsePreallocDoer); ok && !st.op.ReturnsPtr() {
		st.pre = pd
	}
	st.run = func() error { return m.runHost(st) }
	return nil
}

// addGrad binds a zeroed host gradient to w and a device accumulator.
func (m *Machine) addGrad(w *G.Node) error {
	s := m.slots[w]
	if s == nil || s.param == nil {
		return fmt.Errorf("cuda: learnable %s is not a parameter of the graph", w.Name())
	}
	wv := w.Value().(*tensor.Dense)
	host := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(wv.Shape().Clone()...))
	if err := nn.Catch("bind gradient of "+w.Name(), func() error { G.WithGrad(host)(w); return nil }); err != nil {
		return fmt.Errorf("cuda: %w", err)
	}
	acc, err := m.alloc(wv.Shape().TotalSize())
	if err != nil {
		return err
	}
	a := &gradAcc{of: w, grad: w.Deriv(), p: s.param, acc: acc, host: host}
	if a.grad != nil {
		if a.src = m.slots[a.grad]; a.src == nil {
			return fmt.Errorf("cuda: gradient node of %s is not in the graph", w.Name())
		}
	}
	m.grads = append(m.grads, a)
	m.byNode[w] = a
	return nil
}

// RunAll uploads the inputs, runs every step, adds the learnables'
// gradients into their accumulators and downloads the fetched nodes.
//
// The whole run holds the device (one OS thread pinned, the context made
// current once) and queues every copy, launch and GEMM on the device's
// one stream without waiting: the host waits only where it needs values
// — before a host fallback that reads device buffers (one Sync for all
// its inputs) and once at the end for the fetched nodes. An error of a
// kernel queued earlier surfaces at the next Sync.
func (m *Machine) RunAll() error {
	release, err := m.dev.hold()
	if err != nil {
		return err
	}
	defer release()
	for _, s := range m.params {
		if v, ok := s.node.Value().(*tensor.Dense); !ok || v.Uintptr() != s.param.host.Uintptr() {
			return fmt.Errorf("cuda: parameter %s was rebound on the host after the machine was built: "+
				"its device copy is the parameter; change weights in place and call Session.Upload", s.node.Name())
		}
	}
	for _, s := range m.inputs {
		if err := m.uploadInput(s); err != nil {
			return err
		}
	}
	for _, st := range m.steps {
		if st.done {
			continue
		}
		if err := m.runStep(st); err != nil {
			return fmt.Errorf("cuda: node %s (%v): %w", st.node.Name(), st.op, err)
		}
		st.done = st.once
	}
	for _, a := range m.grads {
		if a.src == nil {
			continue // the loss does not depend on it: its gradient is 0
		}
		n := a.acc.N
		if err := launch1D(m.dev, "lsf_accum", n, a.src.buf, a.acc, n); err != nil {
			return fmt.Errorf("cuda: gradient of %s: %w", a.of.Name(), err)
		}
	}
	return m.fetchSlots(m.out, true)
}

// runStep runs one step, timing it when profiling.
func (m *Machine) runStep(st *xstep) error {
	if m.prof == nil {
		return st.run()
	}
	if err := m.dev.Sync(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := st.run(); err != nil {
		return err
	}
	err := m.dev.Sync()
	m.prof[st.kind.String()+" "+st.fam] += time.Since(t0)
	return err
}

// uploadInput sends an input's current host value to its buffer.
func (m *Machine) uploadInput(s *slot) error {
	v := s.node.Value()
	if v == nil {
		return fmt.Errorf("cuda: input %s has no value: bind it with G.Let before RunAll", s.node.Name())
	}
	if s.ints {
		ints, err := int32s(v, s.scratch)
		if err != nil {
			return fmt.Errorf("cuda: input %s: %w", s.node.Name(), err)
		}
		s.scratch = ints
		if len(ints) != s.buf.N {
			return fmt.Errorf("cuda: input %s has %d values, the graph expects %d", s.node.Name(), len(ints), s.buf.N)
		}
		return m.dev.uploadInts(s.buf, ints)
	}
	if d, ok := v.(*tensor.Dense); ok && d.Dtype() == tensor.Float32 {
		if p := m.sess.lookup(d); p != nil && p.buf.N == s.buf.N {
			// A weight the device trains (registered after this machine
			// was built): its host copy may be stale, the device one is not.
			return launch1D(m.dev, "lsf_scale", p.buf.N, p.buf, float32(1), s.buf, p.buf.N)
		}
	}
	f, err := floats(v)
	if err != nil {
		return fmt.Errorf("cuda: input %s: %w", s.node.Name(), err)
	}
	if len(f) != s.buf.N {
		return fmt.Errorf("cuda: input %s has %d values, the graph expects %d", s.node.Name(), len(f), s.buf.N)
	}
	return m.dev.upload(s.buf, f)
}

// fetchSlots downloads the device values of slots into their host
// mirrors, waits once, and binds the mirrors to their nodes (inputs and
// constants keep their bound values). With wait it synchronises even when nothing was
// downloaded (the end of a run).
func (m *Machine) fetchSlots(slots []*slot, wait bool) error {
	queued := wait
	for _, s := range slots {
		_, q, err := m.hostValueAsync(s)
		if err != nil {
			return err
		}
		queued = queued || q
	}
	if queued {
		if err := m.dev.Sync(); err != nil {
			return err
		}
	}
	for _, s := range slots {
		if s.hostKnown {
			continue
		}
		if err := G.UnsafeLet(s.node, s.host); err != nil {
			return err
		}
	}
	return nil
}

// Read downloads the current device values of nodes of the graph and
// binds them on the host (Node.Value), for values read now and then
// rather than after every run: spike telemetry (model.EncoderOutput.Stats),
// attention maps, features.
func (m *Machine) Read(nodes ...*G.Node) error {
	slots := make([]*slot, len(nodes))
	for i, n := range nodes {
		s, ok := m.slots[n]
		if !ok {
			return fmt.Errorf("cuda: node %s is not in the machine's graph", n.Name())
		}
		slots[i] = s
	}
	return m.fetchSlots(slots, false)
}

// Reset is a no-op kept for G.VM: outputs are overwritten by the next run.
func (m *Machine) Reset() {}

// Close frees the machine's device buffers (not the session's
// parameters).
func (m *Machine) Close() error {
	var errs []error
	for _, b := range m.owned {
		errs = append(errs, m.dev.Free(b))
	}
	m.owned, m.steps, m.grads, m.inputs, m.params, m.out = nil, nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// Plan is the lowering the machine was built from.
func (m *Machine) Plan() *Plan { return m.plan }

// HostSteps lists the families of the steps that run as host fallbacks,
// each once, in step order: what a profile of a slow GPU run looks at
// first.
func (m *Machine) HostSteps() []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range m.steps {
		if st.kind == Host && !seen[st.fam] {
			seen[st.fam] = true
			out = append(out, st.fam)
		}
	}
	return out
}

// Sync downloads the session's parameters into their host tensors and
// this machine's accumulated gradients into the tensors w.Grad() returns.
func (m *Machine) Sync() error {
	if err := m.sess.Download(); err != nil {
		return err
	}
	return m.DownloadGrads()
}

// DownloadGrads downloads the accumulated gradients into the tensors
// w.Grad() returns (for host-side unscaling, norms, clipping).
func (m *Machine) DownloadGrads() error {
	for _, a := range m.grads {
		if err := m.dev.downloadAsync(nn.Slice[float32](a.host), a.acc); err != nil {
			return fmt.Errorf("cuda: gradient of %s: %w", a.of.Name(), err)
		}
	}
	return m.dev.Sync()
}

// UploadGrads sends the host gradients (w.Grad()) to the device
// accumulators, after the host changed them (unscaled, clipped, zeroed).
func (m *Machine) UploadGrads() error {
	for _, a := range m.grads {
		if err := m.dev.upload(a.acc, nn.Slice[float32](a.host)); err != nil {
			return fmt.Errorf("cuda: gradient of %s: %w", a.of.Name(), err)
		}
	}
	return nil
}

// ZeroGrads zeroes the device gradients of nodes (all learnables when
// nodes is empty): a skipped step, the start of an accumulation window.
func (m *Machine) ZeroGrads(nodes ...*G.Node) error {
	return m.eachGrad(nodes, func(a *gradAcc) error {
		return launch1D(m.dev, "lsf_fill", a.acc.N, a.acc, float32(0), a.acc.N)
	})
}

// ScaleGrads multiplies the device gradients of nodes (all learnables
// when nodes is empty) by s: averaging an accumulation window, unscaling
// a scaled loss.
func (m *Machine) ScaleGrads(s float64, nodes ...*G.Node) error {
	return m.eachGrad(nodes, func(a *gradAcc) error {
		return launch1D(m.dev, "lsf_scale", a.acc.N, a.acc, float32(s), a.acc, a.acc.N)
	})
}

// GradSumSquares returns Σ (s·g)² over every element of every gradient
// accumulator, summed on the device per tensor (lsf_sum_sq) and over the
// tensors in float64 on the host: the squared global norm of the
// gradients scaled by s, and non-finite when any gradient is. Only the
// per-tensor sums are downloaded; the gradients stay on the device.
func (m *Machine) GradSumSquares(s float64) (float64, error) {
	if len(m.grads) == 0 {
		return 0, nil
	}
	if m.sumSq.N < len(m.grads) {
		buf, err := m.dev.Alloc(len(m.grads))
		if err != nil {
			return 0, err
		}
		m.sumSq = buf
		m.owned = append(m.owned, buf)
	}
	k := 0
	if err := m.eachGrad(nil, func(a *gradAcc) error {
		k++
		return launchRows(m.dev, "lsf_sum_sq", 1, a.acc, m.sumSq.at(k-1, 1), a.acc.N, float32(s))
	}); err != nil {
		return 0, err
	}
	parts := make([]float32, len(m.grads))
	if err := download(m.dev, parts, m.sumSq); err != nil {
		return 0, err
	}
	total := 0.0
	for _, p := range parts {
		total += float64(p)
	}
	return total, nil
}

// eachGrad calls f for the accumulators of nodes (all when empty),
// holding the device across the launches.
func (m *Machine) eachGrad(nodes G.Nodes, f func(*gradAcc) error) error {
	release, err := m.dev.hold()
	if err != nil {
		return err
	}
	defer release()
	if len(nodes) == 0 {
		for _, a := range m.grads {
			if err := f(a); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range nodes {
		a := m.byNode[n]
		if a == nil {
			return fmt.Errorf("cuda: %s is not a learnable of this machine", n.Name())
		}
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

var _ G.VM = (*Machine)(nil)
