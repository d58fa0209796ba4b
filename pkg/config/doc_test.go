package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReferenceDocumentsEveryKey checks that docs/CONFIG.md names every
// key of the schema (a modality's keys under model.modalities.<name>, a
// stage's under train.stages[i]).
func TestReferenceDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	d := Default()
	d.Model.Modalities = map[string]ModalityConfig{"m": DefaultModality()}
	d.Train.Stages = []StageSettings{{}}
	leaves := map[string]any{}
	flatten("", encode(reflect.ValueOf(d)), leaves)
	for key := range leaves {
		name := key
		if rest, ok := strings.CutPrefix(key, "model.modalities.m."); ok {
			name = rest // the modality table lists keys without the prefix
		}
		if strings.HasPrefix(key, "train.stages") {
			continue // a list: checked below
		}
		if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+name+".") && !strings.Contains(doc, ", `"+name) {
			t.Errorf("docs/CONFIG.md does not document %s", key)
		}
	}
	for _, k := range schemaOf(reflect.TypeOf(StageSettings{})).keys() {
		if !strings.Contains(doc, "`train.stages[i]."+k+"`") {
			t.Errorf("docs/CONFIG.md does not document train.stages[i].%s", k)
		}
	}
	for typ := range preprocessingTypes {
		for _, k := range preprocessingSchema(typ).keys() {
			if k != archKey && !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("docs/CONFIG.md does not document %s preprocessing key %s", typ, k)
			}
		}
	}
	for kind := range inputKinds {
		for _, k := range inputSchema(kind).keys() {
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("docs/CONFIG.md does not document %s input key %s", kind, k)
			}
		}
	}
}
