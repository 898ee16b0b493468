//go:build !amd64 || purego

package vmath

// Without the assembly only the Go versions run; these stubs are never called.

const useAVX2 = false

func expAVX2(nv int, dst, x *float32)                   { panic("vmath: no assembly") }
func sigmoidAVX2(nv int, dst, x *float32)               { panic("vmath: no assembly") }
func siluAVX2(nv int, dst, x *float32)                  { panic("vmath: no assembly") }
func siluBwdAVX2(nv int, dx, dout, x *float32)          { panic("vmath: no assembly") }
func swigluAVX2(nv int, out, a, b *float32)             { panic("vmath: no assembly") }
func swigluBwdAVX2(nv int, da, db, dout, a, b *float32) { panic("vmath: no assembly") }
func softplusAVX2(nv int, dst, x *float32)              { panic("vmath: no assembly") }
func softplusBwdAVX2(nv int, dx, dout, x *float32)      { panic("vmath: no assembly") }
func mulAddAVX2(nv int, dst, a, b *float32)             { panic("vmath: no assembly") }
