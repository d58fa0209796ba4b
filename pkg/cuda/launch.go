package cuda

// Buffer is device memory holding N float32 values (or N 32-bit ints).
type Buffer struct {
	Ptr uintptr
	N   int
}

// launcher is anything that launches kernels (*Device, test devices).
type launcher interface {
	Launch(name string, grid, block [3]uint32, args ...any) error
}

// block256 is the thread block of every kernel launch.
var block256 = [3]uint32{256, 1, 1}

// launch1D runs kernel name with one thread per element of n (blocks of
// 256).
func launch1D(d launcher, name string, n int, args ...any) error {
	blocks := (n + 255) / 256
	if blocks == 0 {
		blocks = 1
	}
	return d.Launch(name, [3]uint32{uint32(blocks), 1, 1}, block256, args...)
}

// launchRows runs a row kernel (one block of 256 threads per row: the
// kernels with shared-memory reductions) over rows blocks.
func launchRows(d launcher, name string, rows int, args ...any) error {
	if rows <= 0 {
		rows = 1
	}
	return d.Launch(name, [3]uint32{uint32(rows), 1, 1}, block256, args...)
}

// launchSumRows runs lsf_sum_rows over a rows × cols matrix: one block
// per 32 columns.
func launchSumRows(d launcher, x, y Buffer, rows, cols int) error {
	return launchRows(d, "lsf_sum_rows", (cols+31)/32, x, y, rows, cols)
}

// pointerWords lays device addresses out as the int32 words of a device
// array of 64-bit pointers (little-endian).
func pointerWords(addrs []uintptr) []int32 {
	words := make([]int32, 2*len(addrs))
	for i, a := range addrs {
		p := uint64(a)
		words[2*i], words[2*i+1] = int32(uint32(p)), int32(uint32(p>>32))
	}
	return words
}
