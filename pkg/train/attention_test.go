package train

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lsfuse/lsfuse/pkg/fusion"
)

func TestAttentionMaps(t *testing.T) {
	net := tinyNet(t, netOpts{strategy: fusion.Hierarchical})
	store := newStoreFor(t, net)
	ds := newSynth(6, 3)
	got, err := AttentionMaps(net, store, ds, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d samples, want 4", len(got))
	}
	var selfMaps [][][]float64
	for i, s := range got {
		if s.Index != i || s.Label != ds.samples[i].Label.Class || s.Pred < 0 || s.Pred >= 3 {
			t.Errorf("sample %d: index %d label %d pred %d", i, s.Index, s.Label, s.Pred)
		}
		var names []string
		for _, m := range s.Maps {
			names = append(names, m.Name)
			for r, row := range m.Weights {
				sum := 0.0
				for _, w := range row {
					sum += w
				}
				if math.Abs(sum-1) > 1e-5 {
					t.Errorf("sample %d map %s row %d sums to %g, want 1", i, m.Name, r, sum)
				}
			}
			switch m.Name {
			case "self":
				if !slices.Equal(m.Rows, []string{"a", "b"}) || !slices.Equal(m.Cols, []string{"a", "b"}) {
					t.Errorf("self map labels %v × %v", m.Rows, m.Cols)
				}
				selfMaps = append(selfMaps, m.Weights)
			case "cross.a":
				// With two modalities, "a" attends to "b" alone: weight 1.
				if !slices.Equal(m.Rows, []string{"a"}) || !slices.Equal(m.Cols, []string{"b"}) || math.Abs(m.Weights[0][0]-1) > 1e-6 {
					t.Errorf("cross.a map %v × %v = %v", m.Rows, m.Cols, m.Weights)
				}
			}
		}
		if !slices.Equal(names, []string{"cross.a", "cross.b", "self"}) {
			t.Errorf("sample %d maps %v", i, names)
		}
	}
	if selfMaps[0][0][0] == selfMaps[1][0][0] && selfMaps[0][0][0] == selfMaps[2][0][0] {
		t.Errorf("self-attention identical for every sample (%v): the maps do not follow the inputs", selfMaps[0])
	}
	path := filepath.Join(t.TempDir(), "att.png")
	if err := WriteAttentionPNG(path, "sample 0", got[0].Maps[2]); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("attention PNG: %v, bounds %v", err, img.Bounds())
	}

	early, err := AttentionMaps(tinyNet(t, netOpts{}), newStoreFor(t, tinyNet(t, netOpts{})), ds, 2)
	if err != nil || early != nil {
		t.Errorf("early fusion: %v, %v; want no maps", early, err)
	}
}
