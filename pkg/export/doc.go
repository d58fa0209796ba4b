// Package export writes trained lsfuse models in formats other tools read:
//
//   - Safetensors: the weights alone (every trainable parameter and buffer
//     of an nn.Store, float32, under the store's dotted names in PyTorch's
//     layouts), for PyTorch, JAX or NumPy users.
//   - ONNX: the inference graph of a model.Network (evaluation mode, every
//     modality present) with the spiking and liquid recurrences unrolled over
//     their T steps into plain ONNX operators, for onnxruntime and other
//     ONNX back ends.
//
// The ONNX ModelProto is encoded by hand with protowire (field numbers from
// onnx/onnx.proto); no generated protobuf code is used. Both writers are
// what `lsfuse export --format safetensors|onnx` calls.
package export
