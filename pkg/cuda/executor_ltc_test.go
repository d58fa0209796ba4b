package cuda

import (
	"strings"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/model"
)

// editedNetwork is the network of a configuration file after edit
// changed its loaded configuration (data sizes as configNetwork's).
func editedNetwork(t *testing.T, file string, edit func(*config.Config)) *model.Network {
	t.Helper()
	cfg, err := config.Load(config.LoadOptions{Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	vocab := map[string]int{}
	for name := range cfg.Model.Modalities {
		vocab[name] = 50
	}
	cfg.SetDataSizes(10, vocab)
	res, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(res.Network)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// ltcNetwork is the robot configuration (a vision and a sensor modality)
// with every modality's backbone switched to LTC.
func ltcNetwork(t *testing.T) *model.Network {
	return editedNetwork(t, "../../configs/robot.yaml", func(cfg *config.Config) {
		for name, mc := range cfg.Model.Modalities {
			mc.Backbone, mc.CfCMode = "ltc", ""
			cfg.Model.Modalities[name] = mc
		}
	})
}

// TestMachineLTCMatchesVM trains one step of an LTC-backbone network on
// the fake device and on vm.Machine: the loss and every gradient agree
// (checkTrainingMatchesVM), nothing runs on the host (the synapse ops,
// their backward, softplus and the division by the unfold count are
// lowered), and the LTC kernels ran.
func TestMachineLTCMatchesVM(t *testing.T) {
	net := ltcNetwork(t)
	ref, got := buildTrainGraph(t, net, 3, 1), buildTrainGraph(t, net, 3, 1)
	plan, err := Lower(got.g)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range plan.Steps {
		if strings.HasPrefix(st.Family, "LTCSynapses") {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no LTC synapse steps in the plan: the backbone switch did not take")
	}
	if host := checkTrainingMatchesVM(t, ref, got); len(host) > 0 {
		t.Errorf("host steps %v: want the whole LTC network on the device", host)
	}
	m, dev := fakeMachine(t, got.g, got.learn, Fetch(got.mg.Loss))
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lsf_ltc_synapses", "lsf_ltc_synapses_grad_v", "lsf_ltc_synapses_grad_p", "lsf_softplus", "lsf_softplus_grad", "lsf_div_row"} {
		if dev.launches[k] == 0 {
			t.Errorf("%s never launched (%d LTC steps)", k, n)
		}
	}
}
