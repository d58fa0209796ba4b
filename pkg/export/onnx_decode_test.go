package export

import (
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// A minimal ModelProto reader for the tests: it decodes what the writer
// emits, independently of the writer's code, so the structural tests check
// the bytes and not the builder's own bookkeeping.

type pbModel struct {
	irVersion, opset int64
	domain           string
	producer         string
	graph            pbGraph
	meta             map[string]string
}

type pbGraph struct {
	name           string
	nodes          []pbNode
	inits          []pbTensor
	inputs, output []pbValue
}

type pbNode struct {
	op, name        string
	inputs, outputs []string
	attrs           map[string]pbAttr
}

type pbAttr struct {
	typ  int64
	i    int64
	f    float32
	ints []int64
	t    *pbTensor
}

type pbTensor struct {
	name string
	dt   int64
	dims []int64
	raw  []byte
}

type pbValue struct {
	name string
	elem int64
	dims []string // "3", or the dim_param ("batch")
}

// walk calls f for every field of the message b.
func walk(b []byte, f func(num protowire.Number, raw []byte, v uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var raw []byte
		var v uint64
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			return fmt.Errorf("field %d: unexpected wire type %d", num, typ)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, raw, v); err != nil {
			return err
		}
	}
	return nil
}

func decodeModel(b []byte) (*pbModel, error) {
	m := &pbModel{meta: map[string]string{}}
	err := walk(b, func(num protowire.Number, raw []byte, v uint64) error {
		switch num {
		case 1:
			m.irVersion = int64(v)
		case 2:
			m.producer = string(raw)
		case 7:
			return decodeGraph(raw, &m.graph)
		case 8:
			return walk(raw, func(n protowire.Number, r []byte, x uint64) error {
				switch n {
				case 1:
					m.domain = string(r)
				case 2:
					m.opset = int64(x)
				}
				return nil
			})
		case 14:
			var k, val string
			err := walk(raw, func(n protowire.Number, r []byte, _ uint64) error {
				if n == 1 {
					k = string(r)
				} else if n == 2 {
					val = string(r)
				}
				return nil
			})
			m.meta[k] = val
			return err
		}
		return nil
	})
	return m, err
}

func decodeGraph(b []byte, g *pbGraph) error {
	return walk(b, func(num protowire.Number, raw []byte, _ uint64) error {
		switch num {
		case 1:
			n, err := decodeNode(raw)
			g.nodes = append(g.nodes, n)
			return err
		case 2:
			g.name = string(raw)
		case 5:
			t, err := decodeTensor(raw)
			g.inits = append(g.inits, t)
			return err
		case 11, 12:
			v, err := decodeValue(raw)
			if num == 11 {
				g.inputs = append(g.inputs, v)
			} else {
				g.output = append(g.output, v)
			}
			return err
		}
		return nil
	})
}

func decodeNode(b []byte) (pbNode, error) {
	n := pbNode{attrs: map[string]pbAttr{}}
	err := walk(b, func(num protowire.Number, raw []byte, _ uint64) error {
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(raw))
		case 2:
			n.outputs = append(n.outputs, string(raw))
		case 3:
			n.name = string(raw)
		case 4:
			n.op = string(raw)
		case 5:
			var name string
			var a pbAttr
			err := walk(raw, func(f protowire.Number, r []byte, v uint64) error {
				switch f {
				case 1:
					name = string(r)
				case 2:
					a.f = math.Float32frombits(uint32(v))
				case 3:
					a.i = int64(v)
				case 5:
					t, err := decodeTensor(r)
					a.t = &t
					return err
				case 8:
					a.ints = append(a.ints, int64(v))
				case 20:
					a.typ = int64(v)
				}
				return nil
			})
			n.attrs[name] = a
			return err
		}
		return nil
	})
	return n, err
}

func decodeTensor(b []byte) (pbTensor, error) {
	var t pbTensor
	err := walk(b, func(num protowire.Number, raw []byte, v uint64) error {
		switch num {
		case 1:
			t.dims = append(t.dims, int64(v))
		case 2:
			t.dt = int64(v)
		case 8:
			t.name = string(raw)
		case 9:
			t.raw = append([]byte(nil), raw...)
		}
		return nil
	})
	return t, err
}

func decodeValue(b []byte) (pbValue, error) {
	var v pbValue
	err := walk(b, func(num protowire.Number, raw []byte, _ uint64) error {
		switch num {
		case 1:
			v.name = string(raw)
		case 2: // TypeProto
			return walk(raw, func(n protowire.Number, r []byte, _ uint64) error {
				if n != 1 {
					return nil
				}
				return walk(r, func(n protowire.Number, r []byte, x uint64) error { // TypeProto.Tensor
					switch n {
					case 1:
						v.elem = int64(x)
					case 2:
						return walk(r, func(n protowire.Number, r []byte, _ uint64) error { // TensorShapeProto
							return walk(r, func(n protowire.Number, r []byte, x uint64) error { // Dimension
								if n == 1 {
									v.dims = append(v.dims, strconv.FormatInt(int64(x), 10))
								} else if n == 2 {
									v.dims = append(v.dims, string(r))
								}
								return nil
							})
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return v, err
}
