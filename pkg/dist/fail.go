package dist

import (
	"fmt"
	"io"
)

// Fail reports err on w naming this rank ("rank 1 of 4: ...") and, in a
// job of several processes, aborts the whole job with code so that no
// other rank waits forever in a collective. With one process (or a nil
// communicator) it does nothing: the caller reports err and exits as usual.
func Fail(c Communicator, w io.Writer, err error, code int) {
	if c == nil || c.Size() == 1 {
		return
	}
	fmt.Fprintf(w, "lsfuse: rank %d of %d failed: %v\n", c.Rank(), c.Size(), err)
	c.Abort(code)
}
