package modality

// Accessors for pkg/export, which writes the log-mel front end as ONNX
// nodes with exactly the constants LogMelSpectrogram builds.

// DFTMatrix returns the windowed real DFT of the log-mel front end as a
// row-major [nFFT, 2·(nFFT/2+1)] matrix: column k holds w[n]·cos(2πnk/N)
// and column nFFT/2+1+k holds −w[n]·sin(2πnk/N), w the periodic Hann
// window, so frames·D gives the real then the imaginary parts.
func DFTMatrix(nFFT int) []float64 { return dftMatrix(nFFT) }

// FrameIndex returns, for a waveform of samples samples, the sample index
// read by each (frame, offset) of the framed signal (frames·nFFT entries,
// row-major) and the number of frames, as LogMelSpectrogram frames it:
// centred frames read a reflect-padded signal (pad nFFT/2), others start
// at sample 0. A waveform too short for one frame is an error.
func FrameIndex(samples, nFFT, hop int, center bool) ([]int, int, error) {
	return frameIndex(samples, nFFT, hop, center)
}
