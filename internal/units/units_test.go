package units

import "testing"

func TestSI(t *testing.T) {
	for x, want := range map[float64]string{412: "412", 98040: "98.0k", 1515320: "1.52M", 7.2e9: "7.20G", 0: "0"} {
		if got := SI(x); got != want {
			t.Errorf("SI(%g) = %q, want %q", x, got, want)
		}
	}
}
