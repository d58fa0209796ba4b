package export

import (
	"math"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX ModelProto is written with protowire. Field numbers are those
// of onnx/onnx.proto; the constants below name them.
const (
	// ModelProto
	fModelIRVersion       = 1
	fModelProducerName    = 2
	fModelProducerVersion = 3
	fModelDocString       = 6
	fModelGraph           = 7
	fModelOpsetImport     = 8
	fModelMetadataProps   = 14
	// OperatorSetIdProto
	fOpsetDomain  = 1
	fOpsetVersion = 2
	// StringStringEntryProto
	fEntryKey   = 1
	fEntryValue = 2
	// GraphProto
	fGraphNode        = 1
	fGraphName        = 2
	fGraphInitializer = 5
	fGraphDocString   = 10
	fGraphInput       = 11
	fGraphOutput      = 12
	// NodeProto
	fNodeInput     = 1
	fNodeOutput    = 2
	fNodeName      = 3
	fNodeOpType    = 4
	fNodeAttribute = 5
	// AttributeProto
	fAttrName = 1
	fAttrF    = 2
	fAttrI    = 3
	fAttrT    = 5
	fAttrInts = 8
	fAttrType = 20
	// TensorProto
	fTensorDims     = 1
	fTensorDataType = 2
	fTensorName     = 8
	fTensorRawData  = 9
	// ValueInfoProto
	fValueName = 1
	fValueType = 2
	// TypeProto and TypeProto.Tensor
	fTypeTensor     = 1
	fTensorElemType = 1
	fTensorShape    = 2
	// TensorShapeProto and its Dimension
	fShapeDim = 1
	fDimValue = 1
	fDimParam = 2
)

// AttributeProto.AttributeType values.
const (
	attrFloat  = 1
	attrInt    = 2
	attrTensor = 4
	attrInts   = 7
)

const (
	producer        = "lsfuse"
	producerVersion = "onnx-export/1"
	graphName       = "lsfuse"
	batchSymbol     = "batch" // dim_param of the dynamic batch axis
)

// irVersion returns the IR version that goes with an opset of the default
// domain (onnx docs/Versioning.md).
func irVersion(opset int) int64 {
	switch {
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	}
	return 10
}

// message appends field num holding the message that body encodes.
func message(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body(nil))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// encodeModel returns the serialised ModelProto of the built graph.
func (b *builder) encodeModel(meta map[string]string, doc string) []byte {
	var out []byte
	out = appendInt(out, fModelIRVersion, irVersion(b.opset))
	out = appendString(out, fModelProducerName, producer)
	out = appendString(out, fModelProducerVersion, producerVersion)
	if doc != "" {
		out = appendString(out, fModelDocString, doc)
	}
	out = message(out, fModelGraph, b.encodeGraph)
	out = message(out, fModelOpsetImport, func(m []byte) []byte {
		m = appendString(m, fOpsetDomain, "")
		return appendInt(m, fOpsetVersion, int64(b.opset))
	})
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = message(out, fModelMetadataProps, func(m []byte) []byte {
			m = appendString(m, fEntryKey, k)
			return appendString(m, fEntryValue, meta[k])
		})
	}
	return out
}

func (b *builder) encodeGraph(out []byte) []byte {
	for i := range b.nodes {
		out = message(out, fGraphNode, b.nodes[i].encode)
	}
	out = appendString(out, fGraphName, graphName)
	for i := range b.inits {
		out = message(out, fGraphInitializer, b.inits[i].encode)
	}
	for _, v := range b.inputs {
		out = message(out, fGraphInput, v.encodeInfo)
	}
	for _, v := range b.outputs {
		out = message(out, fGraphOutput, v.encodeInfo)
	}
	return out
}

func (n *nodeProto) encode(out []byte) []byte {
	for _, in := range n.inputs {
		out = appendString(out, fNodeInput, in)
	}
	for _, o := range n.outputs {
		out = appendString(out, fNodeOutput, o)
	}
	out = appendString(out, fNodeName, n.name)
	out = appendString(out, fNodeOpType, n.op)
	for i := range n.attrs {
		out = message(out, fNodeAttribute, n.attrs[i].encode)
	}
	return out
}

func (a *attribute) encode(out []byte) []byte {
	out = appendString(out, fAttrName, a.name)
	switch a.typ {
	case attrFloat:
		out = protowire.AppendTag(out, fAttrF, protowire.Fixed32Type)
		out = protowire.AppendFixed32(out, math.Float32bits(a.f))
	case attrInt:
		out = appendInt(out, fAttrI, a.i)
	case attrTensor:
		out = message(out, fAttrT, a.t.encode)
	case attrInts:
		for _, v := range a.ints {
			out = appendInt(out, fAttrInts, v)
		}
	}
	return appendInt(out, fAttrType, int64(a.typ))
}

func (t *tensorData) encode(out []byte) []byte {
	for _, d := range t.dims {
		out = appendInt(out, fTensorDims, int64(d))
	}
	out = appendInt(out, fTensorDataType, int64(t.dt))
	if t.name != "" {
		out = appendString(out, fTensorName, t.name)
	}
	out = protowire.AppendTag(out, fTensorRawData, protowire.BytesType)
	return protowire.AppendBytes(out, t.raw)
}

// encodeInfo writes v as a ValueInfoProto; a dimension of -1 is the
// symbolic batch axis.
func (v value) encodeInfo(out []byte) []byte {
	out = appendString(out, fValueName, v.name)
	return message(out, fValueType, func(tp []byte) []byte {
		return message(tp, fTypeTensor, func(tt []byte) []byte {
			tt = appendInt(tt, fTensorElemType, int64(v.dt))
			return message(tt, fTensorShape, func(sh []byte) []byte {
				for _, d := range v.shape {
					sh = message(sh, fShapeDim, func(dm []byte) []byte {
						if d < 0 {
							return appendString(dm, fDimParam, batchSymbol)
						}
						return appendInt(dm, fDimValue, int64(d))
					})
				}
				return sh
			})
		})
	})
}
