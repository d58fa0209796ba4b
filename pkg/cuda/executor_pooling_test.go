package cuda

import (
	"slices"
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/config"
)

func init() {
	fakeKernels["lsf_masked_max_l"] = func(a kargs) { fakeMaskedMaxL(a.p(0), a.p(1), nil, a.p(2), a.i(3), a.i(4), a.i(5)) }
	fakeKernels["lsf_masked_max_l_grad"] = func(a kargs) { fakeMaskedMaxL(a.p(1), a.p(0), a.p(2), a.p(3), a.i(4), a.i(5), a.i(6)) }
}

// fakeMaskedMaxL is lsf_masked_max_l (g nil: y [b,d] the masked max) and
// lsf_masked_max_l_grad (y [b,l,d]: g at each arg-max, 0 elsewhere), one
// thread per (r, k).
func fakeMaskedMaxL(x, mask, g, y []float32, b, l, d int) {
	for i := range b * d {
		r, k := i/d, i%d
		arg := -1
		var best float32
		for j := range l {
			if mask[r*l+j] == 0 {
				continue
			}
			if v := x[(r*l+j)*d+k]; arg < 0 || v > best {
				best, arg = v, j
			}
		}
		if g == nil {
			y[i] = 0
			if arg >= 0 {
				y[i] = best
			}
			continue
		}
		for j := range l {
			y[(r*l+j)*d+k] = 0
			if j == arg {
				y[(r*l+j)*d+k] = g[i]
			}
		}
	}
}

// TestMachineTextMaxPoolingMatchesVM trains one step of the quickstart
// network with max pooling of the text tokens on the fake device and on
// vm.Machine: the loss and every gradient agree, the pooling and its
// backward run on the device, and both kernels ran.
func TestMachineTextMaxPoolingMatchesVM(t *testing.T) {
	net := editedNetwork(t, "../../configs/quickstart.yaml", func(cfg *config.Config) {
		mc := cfg.Model.Modalities["text"]
		mc.Preprocessing["pooling"] = "max"
		cfg.Model.Modalities["text"] = mc
	})
	ref, got := buildTrainGraph(t, net, 3, 1), buildTrainGraph(t, net, 3, 1)
	host := checkTrainingMatchesVM(t, ref, got)
	if slices.ContainsFunc(host, func(f string) bool { return strings.HasPrefix(f, "modality.MaskedMax") }) {
		t.Errorf("host steps %v: the max pooling runs on the host", host)
	}
	m, dev := fakeMachine(t, got.g, got.learn, Fetch(got.mg.Loss))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lsf_masked_max_l", "lsf_masked_max_l_grad"} {
		if dev.launches[k] == 0 {
			t.Errorf("%s never launched: is the text modality max-pooled?", k)
		}
	}
}
