package dist

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// Local returns the communicators of an in-process job of n ranks, one per
// goroutine: the collectives rendezvous in memory and combine the
// contributions in rank order, so results are deterministic and the same
// on every rank, as with MPI. It lets tests run a data-parallel job
// without MPI. Abort makes every pending and later collective of the group
// fail with an error naming the rank and code, then ends the calling
// goroutine (runtime.Goexit, deferred calls run) instead of the process.
func Local(n int) []Communicator {
	g := &localGroup{n: n, parts: make([][]float64, n)}
	g.cond = sync.NewCond(&g.mu)
	out := make([]Communicator, n)
	for r := range out {
		out[r] = &localComm{g: g, rank: r}
	}
	return out
}

type localGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	arrived int
	gen     int
	op      string
	length  int
	parts   [][]float64
	result  []float64
	abort   error
}

type localComm struct {
	g      *localGroup
	rank   int
	closed bool
}

func (c *localComm) Rank() int { return c.rank }
func (c *localComm) Size() int { return c.g.n }

func (c *localComm) AllreduceSum(buf []float64) error { return c.collective("sum", buf) }
func (c *localComm) AllreduceMax(buf []float64) error { return c.collective("max", buf) }
func (c *localComm) Barrier() error                   { return c.collective("barrier", nil) }

func (c *localComm) Abort(code int) {
	g := c.g
	g.mu.Lock()
	if g.abort == nil {
		g.abort = fmt.Errorf("dist: the job was aborted by rank %d with code %d", c.rank, code)
	}
	g.cond.Broadcast()
	g.mu.Unlock()
	runtime.Goexit()
}

func (c *localComm) Close() error {
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	return nil
}

func (c *localComm) collective(op string, buf []float64) error {
	if c.closed {
		return ErrClosed
	}
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.abort != nil {
		return g.abort
	}
	if g.arrived == 0 {
		g.op, g.length = op, len(buf)
	} else if g.op != op || g.length != len(buf) {
		g.abort = fmt.Errorf("dist: rank %d called %s on %d values while another rank called %s on %d: collectives must match on every rank",
			c.rank, op, len(buf), g.op, g.length)
		g.cond.Broadcast()
		return g.abort
	}
	g.parts[c.rank] = slices.Clone(buf)
	g.arrived++
	gen := g.gen
	if g.arrived == g.n {
		res := slices.Clone(g.parts[0])
		if res == nil {
			res = []float64{}
		}
		for _, p := range g.parts[1:] {
			for i, v := range p {
				if op == "max" {
					res[i] = max(res[i], v)
				} else {
					res[i] += v
				}
			}
		}
		g.result, g.arrived = res, 0
		clear(g.parts)
		g.gen++
		g.cond.Broadcast()
	} else {
		for gen == g.gen && g.abort == nil {
			g.cond.Wait()
		}
		if g.abort != nil {
			return g.abort
		}
	}
	copy(buf, g.result)
	return nil
}
