package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "lsfuse dev"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"version", "--bogus"}, 2, "unknown flag"},
		{[]string{"version", "extra"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errb.String())
		}
		if !strings.Contains(out.String()+errb.String(), tc.out) {
			t.Errorf("%v: output %q lacks %q", tc.args, out.String()+errb.String(), tc.out)
		}
	}
}
