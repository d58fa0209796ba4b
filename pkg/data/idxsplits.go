package data

import (
	"fmt"
	"os"
	"path/filepath"
)

// IDX file names of the MNIST and Fashion-MNIST training and test splits.
var idxSplitFiles = []struct{ name, images, labels string }{
	{"train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
	{"test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
}

// mnistSource resolves the MNIST directory: dir, or DefaultMNISTDir when
// dir is "".
func mnistSource(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	return DefaultMNISTDir()
}

// fashionSource resolves the Fashion-MNIST directory (dir, or
// DefaultFashionMNISTDir) and checks that it holds the files, naming the
// Debian package when it does not.
func fashionSource(dir string) (string, error) {
	dir = orDefault(dir, DefaultFashionMNISTDir)
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		return "", fmt.Errorf("Fashion-MNIST not found in %s: install it (Debian/Ubuntu: apt-get install dataset-fashion-mnist) or give its directory", dir)
	}
	return dir, nil
}

// idxSplits reads the 28×28 train and test IDX pairs of dir for the splits
// that get rows (train, test: row counts), in that order. what names the
// source in errors.
func idxSplits(dir, what string, train, test int) ([]genSplit, error) {
	rows := []int{train, test}
	var out []genSplit
	for i, s := range idxSplitFiles {
		if rows[i] == 0 {
			continue
		}
		src, err := readIDXPair(dir, s.images, s.labels)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if src.side != 28 {
			return nil, fmt.Errorf("%s images are %d×%d, want 28×28", what, src.side, src.side)
		}
		out = append(out, genSplit{name: s.name, rows: rows[i], source: src})
	}
	return out, nil
}

// countClasses counts the items of each class 0..k-1 among labels[picks].
func countClasses(labels []int, picks []int, k int) []int {
	counts := make([]int, k)
	for _, p := range picks {
		counts[labels[p]]++
	}
	return counts
}
