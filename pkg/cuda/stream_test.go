package cuda

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"
)

// TestFakeDownloadNeedsSync checks the fake device's stream model: a
// queued download holds NaN until Sync, and then the value the buffer had
// when the copy was queued (later work does not leak into it).
func TestFakeDownloadNeedsSync(t *testing.T) {
	d := newFakeDevice()
	b, err := d.Alloc(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.upload(b, []float32{1, 2}); err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 2)
	if err := d.downloadAsync(dst, b); err != nil {
		t.Fatal(err)
	}
	if err := d.upload(b, []float32{5, 6}); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(dst[0])) || !math.IsNaN(float64(dst[1])) {
		t.Fatalf("before Sync the destination holds %v, want NaN", dst)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if dst[0] != 1 || dst[1] != 2 {
		t.Errorf("after Sync %v, want [1 2]", dst)
	}
}

// countHostReads counts the host steps of m that read a device buffer
// (an input that is not a bound host value: not an input, a constant or
// an index step's output): each needs one Sync.
func countHostReads(m *Machine) int {
	n := 0
	for _, st := range m.steps {
		if st.kind != Host {
			continue
		}
		for _, s := range st.in {
			if !s.hostKnown {
				n++
				break
			}
		}
	}
	return n
}

// TestMachineRunSynchronisesOnce checks that a lowered bench-small run
// holds the device across all its work and waits once (for the fetched
// loss and output: its one host step, the token pooling weights, reads
// only the token ids and a constant, both known on the host), and that a host-only run waits once per host step
// that reads device values, plus once at the end (runs after the first,
// which also computes the shape constants).
func TestMachineRunSynchronisesOnce(t *testing.T) {
	for _, hostOnly := range []bool{false, true} {
		b := newBenchSmall(t, 4, 4)
		opts := []Option{Fetch(b.mg.Loss, b.mg.Output)}
		if hostOnly {
			opts = append(opts, hostFallbackOnly())
		}
		m, dev := fakeMachine(t, b.g, b.learn, opts...)
		b.bindBenchSmall(t, rand.New(rand.NewSource(3)), 1)
		if err := m.RunAll(); err != nil { // the first run also computes the shape constants
			t.Fatal(err)
		}
		dev.syncs = 0
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		want := 1 + countHostReads(m)
		if !hostOnly && want != 1 {
			t.Errorf("lowered bench-small has %d host steps reading device values, want none", want-1)
		}
		if dev.syncs != want || dev.unheld != 0 || dev.held != 0 || dev.maxHeld != 1 {
			t.Errorf("host only %v: %d syncs (want %d), %d launches outside the hold, hold depth %d after the run (max %d)",
				hostOnly, dev.syncs, want, dev.unheld, dev.held, dev.maxHeld)
		}
		if l := b.loss(t); math.IsNaN(l) {
			t.Errorf("host only %v: loss NaN", hostOnly)
		}
		m.Close()
	}
}

// lazyDevice is the fake device with a Sync that waits for nothing: the
// queued downloads never land.
type lazyDevice struct{ *fakeDevice }

func (lazyDevice) Sync() error { return nil }

// TestMachineHostReadWithoutSyncFails shows that the fake device catches
// a host fallback reading device values without synchronising: with a
// Sync that does not wait, the host steps compute on NaN (the run fails,
// or its loss is NaN).
func TestMachineHostReadWithoutSyncFails(t *testing.T) {
	b := newBenchSmall(t, 4, 4)
	m, err := NewMachine(b.g, b.learn, WithSession(newSession(lazyDevice{newFakeDevice()}, nil)), hostFallbackOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b.bindBenchSmall(t, rand.New(rand.NewSource(3)), 1)
	err = m.RunAll()
	if err != nil {
		t.Logf("run failed as it should: %v", err)
		return
	}
	if l := b.loss(t); !math.IsNaN(l) {
		t.Errorf("loss %v without synchronisation: want an error or NaN from the unsynchronised downloads", l)
	}
}

// TestConfigsSynchroniseOnce: the training step of every configuration in
// configs/ reads no device value on the host before its end (its host
// steps read only values bound on the host: token ids, RNG masks), so a
// step waits for the GPU once.
func TestConfigsSynchroniseOnce(t *testing.T) {
	files := configFiles(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			tg := trainingGraph(t, f)
			m, dev := fakeMachine(t, tg.g, tg.learn, Fetch(tg.mg.Loss))
			defer m.Close()
			tg.bindRandom(t, rand.New(rand.NewSource(5)), 1)
			if err := m.RunAll(); err != nil { // the first run also computes the shape constants
				t.Fatal(err)
			}
			dev.syncs = 0
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			if n := countHostReads(m); n != 0 || dev.syncs != 1 {
				t.Errorf("%d host steps read device values (host steps %v); %d waits per step, want 1", n, m.HostSteps(), dev.syncs)
			}
		})
	}
}
