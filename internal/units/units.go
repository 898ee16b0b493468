// Package units formats counts and rates for people: the one k/M/G formatter the console
// output (progress bars, recipe tables, run logs) shares.
package units

import "fmt"

// SI formats x with a k/M/G suffix: 3 significant-ish digits, "1.52M", "98.0k", "412".
func SI(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
