//go:build cuda

package experiment

import _ "github.com/hybridlab/hybrid/kernels/cuda" // registers "cuda" when a device is present
