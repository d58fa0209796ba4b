//go:build !unix

package experiment

import "os"

// peakRSS is unknown on platforms without getrusage: the table shows
// memory as "—".
func peakRSS(*os.ProcessState) int64 { return 0 }
