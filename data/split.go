package data

// Pre-splitting cuts text into words before BPE sees it, so merges never cross a word edge.
// That keeps training cheap (pairs are counted once per distinct word, weighted by its
// frequency) and encoding cacheable (the same word always encodes the same way).
//
// The rule, on bytes so that every input splits and nothing is lost:
//   - a word is a run of one class: letters (ASCII letters, digits, '_' and every byte ≥ 0x80,
//     so UTF-8 sequences stay whole), punctuation (other printable ASCII), spaces, or other
//     whitespace ('\t', '\n', '\r', ...);
//   - a single space joins the letter or punctuation run after it (" return", " :="), as in
//     GPT-2; in a longer run of spaces the last one does;
//   - no word is longer than maxWord bytes, which bounds the quadratic merge loop in Encode.

const maxWord = 64

const (
	clsLetter = iota
	clsSpace
	clsWhite
	clsPunct
)

var byteClass = func() (c [256]uint8) {
	for i := range c {
		b := byte(i)
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b >= 0x80:
			c[i] = clsLetter
		case b == ' ':
			c[i] = clsSpace
		case b == '\t', b == '\n', b == '\r', b == '\v', b == '\f':
			c[i] = clsWhite
		default:
			c[i] = clsPunct
		}
	}
	return c
}()

// splitWords calls yield with each word of s in order; the words concatenate to s.
func splitWords[S ~string | ~[]byte](s S, yield func(S)) {
	n := len(s)
	for i := 0; i < n; {
		j := i + 1
		c := byteClass[s[i]]
		if c == clsSpace {
			for j < n && s[j] == ' ' {
				j++
			}
			if j < n {
				if c2 := byteClass[s[j]]; c2 == clsLetter || c2 == clsPunct {
					if j-i > 1 {
						j-- // leave the last space to the word after it
					} else {
						for j++; j < n && byteClass[s[j]] == c2; j++ {
						}
					}
				}
			}
		} else {
			for j < n && byteClass[s[j]] == c {
				j++
			}
		}
		if j-i > maxWord {
			j = i + maxWord
		}
		yield(s[i:j])
		i = j
	}
}
