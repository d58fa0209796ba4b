//go:build unix

package experiment

import (
	"os"
	"runtime"
	"syscall"
)

// peakRSS returns the peak resident set size, in bytes, of the exited
// child process (getrusage's ru_maxrss of that child alone, as wait4
// reports it; Linux VmHWM), or 0 when it is unknown.
func peakRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes on Darwin
	}
	return int64(ru.Maxrss) * 1024 // kilobytes on Linux and the BSDs
}
