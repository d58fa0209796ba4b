package cuda

import (
	G "gorgonia.org/gorgonia"

	"github.com/lsfuse/lsfuse/pkg/train"
)

// TrainDevice returns the train.Device that runs the trainer's graphs
// (train.Options.Device, train.EvalOptions.Device) on s: every graph gets
// a Machine on the session, fetching its loss and output; evaluation
// graphs run in EvalMode; Adam steps on the device. The session's
// parameters are shared by all of them (the training graphs of both batch
// sizes and the evaluation graphs). opts are added to every machine's
// (MixedPrecision).
func TrainDevice(s *Session, opts ...Option) train.Device { return trainDevice{s, opts} }

type trainDevice struct {
	s    *Session
	opts []Option
}

// NewExecutor implements train.Device.
func (d trainDevice) NewExecutor(g *G.ExprGraph, learn, fetch G.Nodes, eval bool) (train.Executor, error) {
	opts := append([]Option{WithSession(d.s), Fetch(fetch...)}, d.opts...)
	if eval {
		opts = append(opts, EvalMode())
		learn = nil
	}
	m, err := NewMachine(g, learn, opts...)
	if err != nil {
		return nil, err
	}
	return trainMachine{m}, nil
}

// Download implements train.Device (Session.Download).
func (d trainDevice) Download() error { return d.s.Download() }

// Upload implements train.Device (Session.Upload).
func (d trainDevice) Upload() error { return d.s.Upload() }

// trainMachine is a Machine as a train.Executor: AdamStep takes the
// trainer's AdamConfig (the same fields).
type trainMachine struct{ *Machine }

// AdamStep implements train.Executor (Machine.AdamStep).
func (m trainMachine) AdamStep(cfg train.AdamConfig, nodes ...*G.Node) error {
	return m.Machine.AdamStep(AdamConfig(cfg), nodes...)
}

var _ train.Executor = trainMachine{}
