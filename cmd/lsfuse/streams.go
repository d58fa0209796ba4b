package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are a command's input and outputs: results go to Out, status
// (progress, log lines) to ErrOut. Commands never write to os.Stdout or
// os.Stderr directly, so tests capture everything and choose whether ErrOut
// counts as a terminal.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY reports that ErrOut is an interactive terminal: progress is
	// drawn as live bars there, and as plain periodic lines otherwise.
	ErrTTY bool
}

// newIOStreams wraps the process's streams, detecting whether stderr is a
// terminal.
func newIOStreams(stdout, stderr io.Writer) *IOStreams {
	s := &IOStreams{In: os.Stdin, Out: stdout, ErrOut: stderr}
	if f, ok := stderr.(*os.File); ok {
		s.ErrTTY = term.IsTerminal(int(f.Fd()))
	}
	return s
}
