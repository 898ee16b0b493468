package cpu_test

import (
	"testing"

	"github.com/hybridlab/hybrid/kernels"
	"github.com/hybridlab/hybrid/kernels/cpu"
	"github.com/hybridlab/hybrid/kernels/kernelstest"
)

func TestConformance(t *testing.T) {
	be := cpu.New()
	t.Logf("backend: %s", be.Name())
	kernelstest.Run(t, be)
}

func TestRegistry(t *testing.T) {
	be, err := kernels.Get("cpu")
	if err != nil || be == nil {
		t.Fatalf("cpu backend not registered: %v", err)
	}
	if _, err := kernels.Get("cuda"); err == nil {
		t.Fatal("cuda backend found in a build without -tags cuda")
	}
	if _, err := kernels.Get("tpu"); err == nil {
		t.Fatal("unknown backend did not fail")
	}
}
