// Command lsfuse trains, evaluates and exports liquid-spiking multimodal
// fusion networks.
//
// Exit codes: 0 success, 1 the run failed, 2 bad usage or bad configuration.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lsfuse/lsfuse/pkg/config"
	"github.com/lsfuse/lsfuse/pkg/nn"
)

func main() {
	// Gorgonia's own matrix products (and gonum's) use lsfuse's SIMD GEMM;
	// lsfuse's kernels use it either way.
	nn.UseFastBLAS()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks errors caused by the user's flags, arguments or config:
// they exit with code 2 and print as one plain sentence.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes the command line and maps errors to exit codes; a panic
// becomes exit code 1 with a one-line message, never a stack trace.
func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "lsfuse: internal error: %v (please report this)\n", r)
			code = 1
		}
	}()
	root := newRootCmd(newIOStreams(stdout, stderr))
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "lsfuse: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || config.IsConfigError(err) || isCobraUsage(err) {
		return 2
	}
	return 1
}
