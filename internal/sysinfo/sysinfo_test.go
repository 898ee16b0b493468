package sysinfo

import "testing"

func TestMeasures(t *testing.T) {
	if PeakRSS() <= 0 {
		t.Fatal("PeakRSS not positive")
	}
	if r := RSS(); r < 0 || r > PeakRSS() {
		t.Fatalf("RSS %d outside [0, peak %d]", r, PeakRSS())
	}
	if CPU() == "" {
		t.Fatal("empty CPU name")
	}
}

func TestField(t *testing.T) {
	b := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t10 kB\n")
	if got := field(b, "VmHWM:"); got != 2048<<10 {
		t.Fatalf("VmHWM = %d", got)
	}
	if got := field(b, "Missing:"); got != 0 {
		t.Fatalf("missing = %d", got)
	}
}
