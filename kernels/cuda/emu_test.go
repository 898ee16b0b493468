//go:build cudaemu && !cuda

package cuda

import (
	"testing"

	"github.com/hybridlab/hybrid/kernels/kernelstest"
)

func testBackend(*testing.T) *Backend { return NewEmu() }

// TestConformance runs the shared conformance suite on the real kernels compiled for the host.
func TestConformance(t *testing.T) { kernelstest.Run(t, testBackend(t)) }
