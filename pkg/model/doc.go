// Package model assembles lsfuse's liquid-spiking networks from pkg/nn
// building blocks: the leaky integrate-and-fire (LIF) spiking encoder, the
// liquid cells that read its spike trains (ncps' CfC and LTC), the
// per-modality ModalityEncoder, and the spike telemetry logged during
// training.
//
// # Data flow of one modality
//
//	x [B, InputDim]
//	  → proj: Linear(InputDim → EncoderDim)
//	  → spiking encoder: LIF layers over T steps (direct coding: the first
//	    layer's input current is the same every step)   → T × [B, SpikingUnits]
//	  → liquid cell (CfC or LTC) over the T spike vectors, h0 = 0
//	  → out: Linear(LiquidUnits → EncoderDim) of the last state → [B, EncoderDim]
//
// Every builder takes a plain config struct, validates it in its
// constructor (errors name the modality and the field), and adds nodes to a
// Gorgonia graph through an *nn.Ctx, whose scope path prefixes parameter
// names and error messages. Builders are dtype-generic: float32 graphs for
// training, float64 for gradient checks of the same code.
//
// # Reference semantics
//
// LIF layers follow snnTorch's Leaky neuron (reset_delay=True), CfC and LTC
// follow ncps (mlech26l/ncps, torch). Golden vectors written by
// scripts/golden.py from plain PyTorch implementations of those equations
// (testdata/golden/) pin the forward values and gradients; see DESIGN.md §1.
package model
