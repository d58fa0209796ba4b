//go:build ignore

// gemm_asm_gen writes gemm_kernel_amd64.s, the GEMM micro-kernels and the
// block transposes of the packers. Run it with `go generate ./pkg/nn`.
//
// A tile kernel keeps an mr×nr block of C in 2·mr vector registers (nr is
// two vectors wide). Step p loads the two vectors of B's row p, broadcasts
// A(r, p) for each row r and issues 2·mr fused multiply-adds. Rows of A are
// addressed from three base registers (rows 0, 3, 6) plus the row stride
// scaled by 1 or 2, so one ADD per base moves every row to the next p.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

type tileSpec struct {
	name   string
	reg    string // "Z" (AVX-512) or "Y" (AVX2)
	elem   int    // bytes per element
	mr     int    // rows (6 or 8)
	lanes  int    // elements per vector
	accReg int    // first accumulator register
}

func (s tileSpec) suffix() string {
	if s.elem == 4 {
		return "PS"
	}
	return "PD"
}

func (s tileSpec) bcast() string {
	if s.elem == 4 {
		return "VBROADCASTSS"
	}
	return "VBROADCASTSD"
}

// rowAddr is the address of A(r, p) for the current p.
func rowAddr(r int) string {
	base := []string{"R8", "R9", "R10"}[r/3]
	switch r % 3 {
	case 0:
		return "(" + base + ")"
	case 1:
		return "(" + base + ")(AX*1)"
	}
	return "(" + base + ")(AX*2)"
}

func genTile(w *bytes.Buffer, s tileSpec) {
	ty := "float32"
	if s.elem == 8 {
		ty = "float64"
	}
	betaOff := 64 + s.elem
	flagOff := 64 + 2*s.elem
	if s.elem == 4 {
		flagOff = 72
	}
	argSize := flagOff + 8
	vb := s.lanes * s.elem // bytes per vector
	acc := func(r, half int) string { return fmt.Sprintf("%s%d", s.reg, s.accReg+2*r+half) }
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	p("// func %s(k int, a *%s, sai, sak uintptr, b *%s, sbk uintptr, c *%s, ldc uintptr, alpha, beta %s, useBeta uintptr)", s.name, ty, ty, ty, ty)
	p("// %d×%d tile; strides in bytes.", s.mr, 2*s.lanes)
	p("TEXT ·%s(SB), NOSPLIT, $0-%d", s.name, argSize)
	p("\tMOVQ k+0(FP), CX")
	p("\tMOVQ a+8(FP), R8")
	p("\tMOVQ sai+16(FP), AX")
	p("\tMOVQ sak+24(FP), DX")
	p("\tMOVQ b+32(FP), SI")
	p("\tMOVQ sbk+40(FP), BX")
	p("\tLEAQ (R8)(AX*2), R9")
	p("\tADDQ AX, R9")
	if s.mr > 6 {
		p("\tLEAQ (R9)(AX*2), R10")
		p("\tADDQ AX, R10")
	}
	zero := "VXORPS" // AVX; the ZMM form needs AVX512DQ, so use VPXORD there
	if s.reg == "Z" {
		zero = "VPXORD"
	}
	for r := 0; r < s.mr; r++ {
		for h := 0; h < 2; h++ {
			p("\t%s %s, %s, %s", zero, acc(r, h), acc(r, h), acc(r, h))
		}
	}
	p("\tTESTQ CX, CX")
	p("\tJZ %s_store", s.name)
	p("%s_loop:", s.name)
	p("\tVMOVUP%s (SI), %s0", s.suffix()[1:], s.reg)
	p("\tVMOVUP%s %d(SI), %s1", s.suffix()[1:], vb, s.reg)
	nb := 2 // broadcast registers (AVX2: Y2, Y3; AVX-512: Z2…Z9)
	if s.reg == "Z" {
		nb = 8
	}
	for r := 0; r < s.mr; r++ {
		br := fmt.Sprintf("%s%d", s.reg, 2+r%nb)
		p("\t%s %s, %s", s.bcast(), rowAddr(r), br)
		p("\tVFMADD231%s %s0, %s, %s", s.suffix(), s.reg, br, acc(r, 0))
		p("\tVFMADD231%s %s1, %s, %s", s.suffix(), s.reg, br, acc(r, 1))
	}
	p("\tADDQ DX, R8")
	p("\tADDQ DX, R9")
	if s.mr > 6 {
		p("\tADDQ DX, R10")
	}
	p("\tADDQ BX, SI")
	p("\tDECQ CX")
	p("\tJNZ %s_loop", s.name)
	p("%s_store:", s.name)
	p("\tMOVQ c+48(FP), DI")
	p("\tMOVQ ldc+56(FP), BX")
	p("\t%s alpha+64(FP), %s0", s.bcast(), s.reg)
	p("\tMOVQ useBeta+%d(FP), CX", flagOff)
	p("\tTESTQ CX, CX")
	p("\tJZ %s_nobeta", s.name)
	p("\t%s beta+%d(FP), %s1", s.bcast(), betaOff, s.reg)
	for r := 0; r < s.mr; r++ {
		for h := 0; h < 2; h++ {
			p("\tVMUL%s %s0, %s, %s", s.suffix(), s.reg, acc(r, h), acc(r, h))
			p("\tVFMADD231%s %d(DI), %s1, %s", s.suffix(), h*vb, s.reg, acc(r, h))
			p("\tVMOVUP%s %s, %d(DI)", s.suffix()[1:], acc(r, h), h*vb)
		}
		if r < s.mr-1 {
			p("\tADDQ BX, DI")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("%s_nobeta:", s.name)
	for r := 0; r < s.mr; r++ {
		for h := 0; h < 2; h++ {
			p("\tVMUL%s %s0, %s, %s", s.suffix(), s.reg, acc(r, h), acc(r, h))
			p("\tVMOVUP%s %s, %d(DI)", s.suffix()[1:], acc(r, h), h*vb)
		}
		if r < s.mr-1 {
			p("\tADDQ BX, DI")
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genTranspose8x8F32 writes transpose8x8F32(src *float32, lds uintptr,
// dst *float32, ldd uintptr, blocks int): for each of blocks 8×8 blocks,
// dst[(8b+c)·ldd + r] = src[r·lds + 8b + c] (strides in bytes).
func genTranspose8x8F32(w *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("// func transpose8x8F32(src *float32, lds uintptr, dst *float32, ldd uintptr, blocks int)")
	p("TEXT ·transpose8x8F32(SB), NOSPLIT, $0-40")
	p("\tMOVQ src+0(FP), SI")
	p("\tMOVQ lds+8(FP), AX")
	p("\tMOVQ dst+16(FP), DI")
	p("\tMOVQ ldd+24(FP), BX")
	p("\tMOVQ blocks+32(FP), CX")
	p("\tLEAQ (SI)(AX*2), R8")
	p("\tADDQ AX, R8") // row 3
	p("\tLEAQ (R8)(AX*2), R9")
	p("\tADDQ AX, R9") // row 6
	p("\tLEAQ (DI)(BX*2), R10")
	p("\tADDQ BX, R10") // dst row 3
	p("\tLEAQ (R10)(BX*2), R11")
	p("\tADDQ BX, R11") // dst row 6
	p("\tTESTQ CX, CX")
	p("\tJZ tr32_done")
	p("tr32_loop:")
	src := []string{"(SI)", "(SI)(AX*1)", "(SI)(AX*2)", "(R8)", "(R8)(AX*1)", "(R8)(AX*2)", "(R9)", "(R9)(AX*1)"}
	dst := []string{"(DI)", "(DI)(BX*1)", "(DI)(BX*2)", "(R10)", "(R10)(BX*1)", "(R10)(BX*2)", "(R11)", "(R11)(BX*1)"}
	for r := 0; r < 8; r++ {
		p("\tVMOVUPS %s, Y%d", src[r], r)
	}
	// t(2i) = unpcklps(r(2i), r(2i+1)), t(2i+1) = unpckhps(…) into Y8…Y15.
	for i := 0; i < 4; i++ {
		p("\tVUNPCKLPS Y%d, Y%d, Y%d", 2*i+1, 2*i, 8+2*i)
		p("\tVUNPCKHPS Y%d, Y%d, Y%d", 2*i+1, 2*i, 9+2*i)
	}
	// Rows 0-3 → t8 (lo01), t9 (hi01), t10 (lo23), t11 (hi23); rows 4-7 → t12…t15.
	// u = shufps(t_lo01, t_lo23, 0x44 / 0xEE) etc. into Y0…Y7.
	for g := 0; g < 2; g++ {
		b := 8 + 4*g
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", b+2, b, 4*g+0)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", b+2, b, 4*g+1)
		p("\tVSHUFPS $0x44, Y%d, Y%d, Y%d", b+3, b+1, 4*g+2)
		p("\tVSHUFPS $0xEE, Y%d, Y%d, Y%d", b+3, b+1, 4*g+3)
	}
	// Columns c and c+4 from u_c (rows 0-3) and u_{4+c} (rows 4-7).
	for c := 0; c < 4; c++ {
		p("\tVPERM2F128 $0x20, Y%d, Y%d, Y%d", 4+c, c, 8+c)
		p("\tVPERM2F128 $0x31, Y%d, Y%d, Y%d", 4+c, c, 12+c)
	}
	for c := 0; c < 8; c++ {
		p("\tVMOVUPS Y%d, %s", 8+c, dst[c])
	}
	p("\tADDQ $32, SI")
	p("\tADDQ $32, R8")
	p("\tADDQ $32, R9")
	p("\tLEAQ (DI)(BX*8), DI")
	p("\tLEAQ (R10)(BX*8), R10")
	p("\tLEAQ (R11)(BX*8), R11")
	p("\tDECQ CX")
	p("\tJNZ tr32_loop")
	p("tr32_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

// genTranspose4x4F64 writes transpose4x4F64(src *float64, lds uintptr,
// dst *float64, ldd uintptr, blocks int): for each of blocks 4×4 blocks,
// dst[(4b+c)·ldd + r] = src[r·lds + 4b + c] (strides in bytes).
func genTranspose4x4F64(w *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("// func transpose4x4F64(src *float64, lds uintptr, dst *float64, ldd uintptr, blocks int)")
	p("TEXT ·transpose4x4F64(SB), NOSPLIT, $0-40")
	p("\tMOVQ src+0(FP), SI")
	p("\tMOVQ lds+8(FP), AX")
	p("\tMOVQ dst+16(FP), DI")
	p("\tMOVQ ldd+24(FP), BX")
	p("\tMOVQ blocks+32(FP), CX")
	p("\tLEAQ (SI)(AX*2), R8") // row 2
	p("\tLEAQ (DI)(BX*2), R10")
	p("\tTESTQ CX, CX")
	p("\tJZ tr64_done")
	p("tr64_loop:")
	p("\tVMOVUPD (SI), Y0")
	p("\tVMOVUPD (SI)(AX*1), Y1")
	p("\tVMOVUPD (R8), Y2")
	p("\tVMOVUPD (R8)(AX*1), Y3")
	p("\tVUNPCKLPD Y1, Y0, Y4")
	p("\tVUNPCKHPD Y1, Y0, Y5")
	p("\tVUNPCKLPD Y3, Y2, Y6")
	p("\tVUNPCKHPD Y3, Y2, Y7")
	p("\tVPERM2F128 $0x20, Y6, Y4, Y0")
	p("\tVPERM2F128 $0x20, Y7, Y5, Y1")
	p("\tVPERM2F128 $0x31, Y6, Y4, Y2")
	p("\tVPERM2F128 $0x31, Y7, Y5, Y3")
	p("\tVMOVUPD Y0, (DI)")
	p("\tVMOVUPD Y1, (DI)(BX*1)")
	p("\tVMOVUPD Y2, (R10)")
	p("\tVMOVUPD Y3, (R10)(BX*1)")
	p("\tADDQ $32, SI")
	p("\tADDQ $32, R8")
	p("\tLEAQ (DI)(BX*4), DI")
	p("\tLEAQ (R10)(BX*4), R10")
	p("\tDECQ CX")
	p("\tJNZ tr64_loop")
	p("tr64_done:")
	p("\tVZEROUPPER")
	p("\tRET")
	p("")
}

func main() {
	var w bytes.Buffer
	w.WriteString("// Code generated by gemm_asm_gen.go; DO NOT EDIT.\n\n")
	w.WriteString("//go:build amd64 && !purego\n\n")
	w.WriteString("#include \"textflag.h\"\n\n")
	for _, s := range []tileSpec{
		{name: "sgemmTileAVX512", reg: "Z", elem: 4, mr: 8, lanes: 16, accReg: 16},
		{name: "dgemmTileAVX512", reg: "Z", elem: 8, mr: 8, lanes: 8, accReg: 16},
		{name: "sgemmTileAVX2", reg: "Y", elem: 4, mr: 6, lanes: 8, accReg: 4},
		{name: "dgemmTileAVX2", reg: "Y", elem: 8, mr: 6, lanes: 4, accReg: 4},
	} {
		genTile(&w, s)
	}
	genTranspose8x8F32(&w)
	genTranspose4x4F64(&w)
	if err := os.WriteFile("gemm_kernel_amd64.s", w.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
