package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error is one problem with the configuration: a bad key or value, where it
// came from, and how to fix it. Every error Load, Validate and Resolve
// return is an *Error or joins several (errors.As finds the first), so a
// command can tell configuration problems (exit code 2) from run failures.
type Error struct {
	// Source is where the value came from: a config file path, "--set",
	// an environment variable ("LSFUSE_TRAIN_LR"), a flag ("--epochs"), or
	// "" for the resolved configuration as a whole.
	Source string
	// Line is the 1-based line in Source (0 when not a file).
	Line int
	// Key is the full dotted key ("model.modalities.vision.encoder_dim"),
	// or "" for a problem with the source itself.
	Key string
	// Msg says what is wrong and, where possible, how to fix it.
	Msg string
}

// Error formats "source:line: key: message", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// IsConfigError reports whether err is (or wraps) a configuration problem.
func IsConfigError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// errorList collects errors in the order found.
type errorList []error

func (l *errorList) add(e *Error) { *l = append(*l, e) }

// keyf records a problem with a key of the resolved configuration.
func (l *errorList) keyf(key, format string, args ...any) {
	l.add(&Error{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err joins the list: nil when empty, the error itself when single, else
// one error whose message lists every problem on its own line.
func (l errorList) err() error {
	switch len(l) {
	case 0:
		return nil
	case 1:
		return l[0]
	}
	return joined(l)
}

// joined is several configuration errors, printed one per line.
type joined []error

// Error lists every problem on its own line.
func (j joined) Error() string {
	lines := make([]string, len(j))
	for i, e := range j {
		lines[i] = e.Error()
	}
	return fmt.Sprintf("%d problems in the configuration:\n  %s", len(j), strings.Join(lines, "\n  "))
}

// Unwrap gives errors.As and errors.Is the single problems.
func (j joined) Unwrap() []error { return j }

// suggest returns the candidate closest to key in edit distance, or "" when
// none is close enough to be a likely misspelling.
func suggest(key string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(key, c)
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 1 // short keys: one typo
	if n := len([]rune(key)); n >= 5 {
		limit = max(2, n/4)
	}
	if bestD >= 0 && bestD <= limit {
		return best
	}
	// A key that starts another ("batch" for "batch_size") is a hint too.
	var hits []string
	for _, c := range candidates {
		if len(key) >= 3 && strings.HasPrefix(c, key) {
			hits = append(hits, c)
		}
	}
	if len(hits) == 1 {
		return hits[0]
	}
	return ""
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// transposition of adjacent characters) between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// didYouMean formats an unknown-key message for key (full dotted path) at
// the struct node parent (whose path is parentPath). It suggests a close
// sibling, else the same key elsewhere in root ("lr" under model →
// train.lr).
func didYouMean(root, parent *snode, parentPath, bad string, names []string) string {
	if s := suggest(bad, parent.keys()); s != "" {
		return fmt.Sprintf("did you mean %q?", join(parentPath, s))
	}
	var elsewhere []string
	for _, p := range leafPaths(root, "", names) {
		if p == bad || strings.HasSuffix(p, "."+bad) {
			elsewhere = append(elsewhere, p)
		}
	}
	sort.Strings(elsewhere)
	if len(elsewhere) > 0 && len(elsewhere) <= 3 {
		return fmt.Sprintf("did you mean %s?", quoteList(elsewhere))
	}
	return fmt.Sprintf("valid keys here: %s", strings.Join(parent.keys(), ", "))
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
