package cuda

import (
	"path/filepath"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/model"
)

func TestFamilyOf(t *testing.T) {
	cases := []struct{ typ, name, want string }{
		{"gorgonia.elemBinOp", "+ false", "gorgonia.elemBinOp:+"},
		{"gorgonia.elemBinOp", "⊙ true", "gorgonia.elemBinOp:⊙"},
		{"gorgonia.elemUnaryOp", "neg", "gorgonia.elemUnaryOp:neg"},
		{"gorgonia.linAlgBinOp", "A × B", "gorgonia.linAlgBinOp"},
		{"gorgonia.sumOp", "Σ[0 1]", "gorgonia.sumOp"},
		{"nn.kernelOp", "Linear{(2, 64),64->64,bias=true}", "Linear"},
		{"nn.kernelOp", "Tanh/grad", "Tanh/grad"},
		{"nn.kernelOp", "Spikefast_sigmoid(k=25,m=1,smooth=false)", "Spike"},
		{"nn.kernelOp", "SpikeStats{T=8}", "SpikeStats"},
		{"nn.kernelOp", "LayerNorm{F=128,eps=1e-05}/dx", "LayerNorm/dx"},
		{"nn.kernelOp", "Embedding{num=1000,dim=64,pad=-1}/grad", "Embedding/grad"},
		{"nn.kernelOp", "AttentionWeights{B=2,Lq=1,Lk=1,D=128,heads=4,masked=false}/dq", "AttentionWeights/dq"},
		{"nn.kernelOp", "CrossEntropy{ignore=-100}", "CrossEntropy"},
		{"nn.kernelOp", "Reshape{(8, 32)->[1 8 32]}", "Reshape"},
		{"nn.kernelOp", "modality.Gather{frames{len=6400,n_fft=256,hop=128,center=true},n=6400}", "modality.Gather"},
		{"nn.kernelOp", "LIFSeq{T=8,B=2,N=64,perStep=false,reset=subtract,beta=0.95,theta=1,learn=false/false,graded=false,fast_sigmoid(k=25,m=1,smooth=false)}", "LIFSeq"},
		{"nn.kernelOp", "LIFSeq{T=8,B=2,learn=true/false,fast_sigmoid(k=25)}/grad", "LIFSeq/grad"},
		{"nn.kernelOp", "CfCSeq{T=8,B=2,in=64,units=64,backbone=1x128,lecun_tanh,mode=default,ts=1}/grad", "CfCSeq/grad"},
	}
	for _, c := range cases {
		if got := familyOf(c.typ, c.name); got != c.want {
			t.Errorf("familyOf(%s, %q) = %q, want %q", c.typ, c.name, got, c.want)
		}
	}
	// "Spike…/grad": the spike's surrogate grad. Its name is
	// Spike<kind>(...)/grad, so the suffix is kept after the parameters.
	if got := familyOf("nn.kernelOp", "Spikeatan(k=2,m=1,smooth=false)/grad"); got != "Spike/grad" {
		t.Errorf("spike grad family = %q, want Spike/grad", got)
	}
}

// TestRulesConsistent checks the table: families unique, every named
// kernel exists, host fallbacks are documented, and every kernel is used
// by some rule or by the executor itself.
func TestRulesConsistent(t *testing.T) {
	seen := map[string]bool{}
	used := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.Family] {
			t.Errorf("family %s has two rules", r.Family)
		}
		seen[r.Family] = true
		if r.Kind == Host && r.Note == "" {
			t.Errorf("host fallback %s has no note saying why", r.Family)
		}
		if (r.Kind == Kernel || r.Kind == BLAS) && len(r.Kernels) == 0 {
			t.Errorf("%s runs on the GPU but names no kernel", r.Family)
		}
		for _, k := range r.Kernels {
			used[k] = true
			if strings.HasPrefix(k, "cublas:") {
				if r.Kind != BLAS {
					t.Errorf("%s calls %s but is not a BLAS rule", r.Family, k)
				}
				continue
			}
			if _, ok := KernelParams[k]; !ok {
				t.Errorf("%s names kernel %s, which does not exist", r.Family, k)
			}
		}
	}
	for k := range KernelParams {
		if _, ok := SupportKernels[k]; !used[k] && !ok {
			t.Errorf("kernel %s is used by no rule", k)
		}
	}
}

// configNetwork builds file's network with 10 classes and vocabularies of
// 50.
func configNetwork(t *testing.T, file string) *model.Network {
	t.Helper()
	return editedNetwork(t, file, func(*config.Config) {})
}

// configFiles lists the shipped configurations (configs/*.yaml).
func configFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("configs: %v, %v", files, err)
	}
	return files
}

// trainingGraph builds file's network in training mode for batch 2 on a
// float32 store seeded 1: two builds have equal weights.
func trainingGraph(t *testing.T, file string) *trainGraph {
	t.Helper()
	return buildTrainGraph(t, configNetwork(t, file), 2, 1)
}

// TestLoweringCoversConfigs builds the training graph (forward and
// backward) of every configuration in configs/ and checks that every op
// has a GPU kernel or a documented host fallback, and that the bulk of
// the work (GEMMs, elementwise) is on the GPU.
func TestLoweringCoversConfigs(t *testing.T) {
	files := configFiles(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			plan, err := Lower(trainingGraph(t, f).g)
			if err != nil {
				t.Fatal(err)
			}
			n := plan.Counts()
			if n[BLAS] == 0 || n[Kernel] == 0 || plan.Inputs == 0 {
				t.Errorf("plan %v with %d inputs: want cuBLAS and kernel steps", n, plan.Inputs)
			}
			if n[Host]*10 > len(plan.Steps) {
				t.Errorf("%d of %d steps are host fallbacks (%v): over 10%%", n[Host], len(plan.Steps), plan.HostFamilies())
			}
			t.Logf("%d steps: %d kernel, %d cublas, %d view, %d const, %d host %v", len(plan.Steps),
				n[Kernel], n[BLAS], n[View], n[Const], n[Host], plan.HostFamilies())
		})
	}
}

// TestLowerReportsUncovered lowers a graph with an op no rule covers
// (Gorgonia's transpose) and checks the error names its family.
func TestLowerReportsUncovered(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"))
	y, err := G.Transpose(x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := G.Add(y, y); err != nil {
		t.Fatal(err)
	}
	plan, err := Lower(g)
	if err == nil || !strings.Contains(err.Error(), "gorgonia.transposeOp") {
		t.Fatalf("Lower = %v, want an error naming gorgonia.transposeOp", err)
	}
	if len(plan.Steps) != 1 || plan.Steps[0].Family != "gorgonia.elemBinOp:+" || plan.Inputs != 1 {
		t.Errorf("plan steps %+v, inputs %d: want the add covered and 1 input", plan.Steps, plan.Inputs)
	}
}

// TestLIFVariantsFallBack checks that LIFSeq instances with the smooth
// (gradient-check) forward are Host steps and the others — fixed or
// learnable β/θ, binary or graded spikes — Kernel steps.
func TestLIFVariantsFallBack(t *testing.T) {
	cases := []struct {
		name string
		want Kind
	}{
		{"LIFSeq{T=8,B=2,N=64,perStep=false,reset=subtract,beta=0.95,theta=1,learn=false/false,graded=false,fast_sigmoid(k=25,m=1,smooth=false)}", Kernel},
		{"LIFSeq{T=8,B=2,N=64,perStep=false,reset=subtract,beta=0.95,theta=1,learn=true/false,graded=false,fast_sigmoid(k=25,m=1,smooth=false)}", Kernel},
		{"LIFSeq{T=8,B=2,N=64,perStep=false,reset=zero,beta=0.95,theta=1,learn=false/false,graded=true,atan(k=2,m=1,smooth=false)}/grad", Kernel},
		{"LIFSeq{T=8,B=2,N=64,perStep=true,reset=none,beta=0.95,theta=1,learn=true/true,graded=true,sigmoid(k=25,m=1,smooth=false)}/grad", Kernel},
		{"LIFSeq{T=8,B=2,N=64,perStep=false,reset=subtract,beta=0.95,theta=1,learn=true/false,graded=false,fast_sigmoid(k=25,m=1,smooth=true)}", Host},
		{"LIFSeq{T=8,B=2,N=64,perStep=true,reset=none,beta=0.95,theta=1,learn=false/false,graded=false,fast_sigmoid(k=25,m=1,smooth=true)}/grad", Host},
	}
	for _, c := range cases {
		if got := plannedKind(t, c.name); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestCfCVariantsLowered checks that every CfCSeq mode and backbone
// activation model builds is a device step, and a name the kernels do not
// know (another activation) a Host step.
func TestCfCVariantsLowered(t *testing.T) {
	cases := []struct {
		name string
		want Kind
	}{
		{"CfCSeq{T=8,B=2,in=64,units=64,backbone=1x128,lecun_tanh,mode=default,ts=1}", BLAS},
		{"CfCSeq{T=8,B=2,in=64,units=64,backbone=2x128,silu,mode=no_gate,ts=1}/grad", BLAS},
		{"CfCSeq{T=8,B=2,in=64,units=64,backbone=1x128,gelu,mode=pure,ts=0.5}", BLAS},
		{"CfCSeq{T=8,B=2,in=64,units=64,backbone=1x128,tanh,mode=pure,ts=1}/grad", BLAS},
		{"CfCSeq{T=8,B=2,in=64,units=64,backbone=1x128,softplus,mode=default,ts=1}", Host},
	}
	for _, c := range cases {
		if got := plannedKind(t, c.name); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// plannedKind is the kind Lower gives an nn.Kernel op called name: its
// family's rule, or Host where hostWhen sends the instance there.
func plannedKind(t *testing.T, name string) Kind {
	t.Helper()
	fam := familyOf("nn.kernelOp", name)
	r, ok := ruleOf(fam)
	if !ok {
		t.Fatalf("no rule for %s", fam)
	}
	if host := hostWhen[fam]; host != nil && host(name) != "" {
		return Host
	}
	return r.Kind
}
