package cuda

import "fmt"

// DeviceInfo describes one GPU.
type DeviceInfo struct {
	// Ordinal is the driver's device number.
	Ordinal int
	// Name is the marketing name ("NVIDIA H200").
	Name string
	// Major and Minor are the compute capability (9, 0 for sm_90).
	Major, Minor int
	// MemBytes is the total device memory.
	MemBytes uint64
}

// Arch is the NVRTC architecture flag value, e.g. "sm_90".
func (i DeviceInfo) Arch() string { return fmt.Sprintf("sm_%d%d", i.Major, i.Minor) }

// String is "NVIDIA H200 (sm_90, 140 GiB)".
func (i DeviceInfo) String() string {
	return fmt.Sprintf("%s (%s, %.0f GiB)", i.Name, i.Arch(), float64(i.MemBytes)/(1<<30))
}

// ProbeResult is what Probe found.
type ProbeResult struct {
	// Paths maps each library to where it loaded from.
	Paths map[Library]string
	// DriverVersion is the CUDA version the driver supports (13000 = 13.0).
	DriverVersion int
	// Devices lists the GPUs (at least one when Probe succeeds).
	Devices []DeviceInfo
}

// Probe loads the CUDA stack (Load) and lists the devices. The error is
// a *MissingError naming the driver, a library or the device when one is
// absent.
func Probe() (*ProbeResult, error) {
	r, err := Load()
	if err != nil {
		return nil, err
	}
	return r.probe()
}

// Selection is the outcome of resolving a --device request.
type Selection struct {
	// Device is "cpu" or "cuda".
	Device string
	// Probe is what was found (nil when nothing was probed or it failed).
	Probe *ProbeResult
	// Reason says why auto chose the CPU ("" otherwise).
	Reason string
}

// Resolve turns a --device value ("cpu", "cuda", "auto" or "") into the
// device to run on. "cpu" probes nothing. "cuda" probes and fails with
// the *MissingError naming what is missing (driver, library or device),
// or, when the GPU is usable but this build cannot yet train on it, with
// ErrNoExecutor. "auto" chooses "cuda" when a driver, the libraries and a
// GPU are found, else "cpu" with Reason set; while ExecutorAvailable is
// false it chooses "cpu" without probing (loading the driver costs time
// and can gain nothing). probe is Probe in production; tests pass fakes.
func Resolve(requested string, probe func() (*ProbeResult, error)) (Selection, error) {
	switch requested {
	case "cpu":
		return Selection{Device: "cpu"}, nil
	case "cuda", "auto", "":
	default:
		return Selection{}, fmt.Errorf("unknown device %q: use cpu, cuda or auto", requested)
	}
	if requested != "cuda" && !ExecutorAvailable {
		return Selection{Device: "cpu", Reason: ErrNoExecutor.Error()}, nil
	}
	p, err := probe()
	if err == nil && len(p.Devices) == 0 {
		err = &MissingError{What: "device", Name: "the driver sees no GPU"}
	}
	if err != nil {
		if requested == "cuda" {
			return Selection{}, err
		}
		return Selection{Device: "cpu", Reason: err.Error()}, nil
	}
	if !ExecutorAvailable {
		return Selection{Probe: p}, fmt.Errorf("%w (found %s)", ErrNoExecutor, p.Devices[0])
	}
	return Selection{Device: "cuda", Probe: p}, nil
}

// ExecutorAvailable says whether this build can run training graphs on
// the GPU: the trainer runs them on a Machine through TrainDevice (see
// Lower for the op coverage and the host fallbacks). While it was false,
// --device cuda reported ErrNoExecutor after confirming the GPU is usable
// and auto did not probe.
const ExecutorAvailable = true

// ErrNoExecutor is the error for --device cuda in a build whose
// ExecutorAvailable is false.
var ErrNoExecutor = fmt.Errorf("the CUDA graph executor is not finished in this build: use --device cpu (or auto)")
