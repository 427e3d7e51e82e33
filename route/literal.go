package route

import (
	"bytes"
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// A regex runs only on text that holds a literal every match of it
// contains: most text a drop rule sees does not, and a substring search
// costs a fraction of the regex (a case-insensitive one most of all).

// needle is a literal a text must hold for a match to be possible.
type needle struct {
	lit []byte
	// fold: ignoring ASCII case (set only when the literal's letters fold
	// to ASCII letters alone, so that ASCII folding is the regex's).
	fold bool
}

// requiredLiteral is the longest literal every match of expr (Perl
// syntax, as regexp.Compile reads it) contains; none when it cannot tell.
func requiredLiteral(expr string) needle {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return needle{}
	}
	var best needle
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch r.Op {
		case syntax.OpLiteral:
			fold := r.Flags&syntax.FoldCase != 0
			if n, ok := literalNeedle(r.Rune, fold); ok && len(n.lit) > len(best.lit) {
				best = n
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(r.Sub[0])
		case syntax.OpRepeat:
			if r.Min >= 1 {
				walk(r.Sub[0])
			}
		case syntax.OpConcat:
			for _, s := range r.Sub {
				walk(s)
			}
		}
	}
	walk(re.Simplify())
	return best
}

// literalNeedle is the needle of a literal's runes: its longest run the
// regex matches byte for byte (ignoring ASCII case when fold), if any.
func literalNeedle(runes []rune, fold bool) (needle, bool) {
	var best, cur []byte
	for _, r := range runes {
		// The regex matches invalid UTF-8 as U+FFFD, which these bytes
		// would not; 'k' ignoring case matches the Kelvin sign.
		if r == utf8.RuneError || fold && !asciiFold(r) {
			cur = cur[:0]
			continue
		}
		cur = utf8.AppendRune(cur, r)
		if len(cur) > len(best) {
			best = append(best[:0], cur...)
		}
	}
	return needle{lit: best, fold: fold}, len(best) > 0
}

// asciiFold says whether r and every rune it folds to are ASCII ('k' is
// not: it folds to the Kelvin sign).
func asciiFold(r rune) bool {
	for f := r; ; {
		if f >= utf8.RuneSelf {
			return false
		}
		if f = unicode.SimpleFold(f); f == r {
			return true
		}
	}
}

// in says whether b holds the needle.
func (n *needle) in(b []byte) bool {
	if !n.fold {
		return bytes.Contains(b, n.lit)
	}
	lit := n.lit
	lo, up := lower(lit[0]), upper(lit[0])
	for i := 0; i+len(lit) <= len(b); i++ {
		j := indexEither(b[i:len(b)-len(lit)+1], lo, up)
		if j < 0 {
			return false
		}
		i += j
		if equalFoldASCII(b[i:i+len(lit)], lit) {
			return true
		}
	}
	return false
}

// indexEither is the first index of a or c in s, -1 when neither is.
func indexEither(s []byte, a, c byte) int {
	i := bytes.IndexByte(s, a)
	if a == c {
		return i
	}
	if i >= 0 {
		s = s[:i]
	}
	if j := bytes.IndexByte(s, c); j >= 0 {
		return j
	}
	return i
}

func equalFoldASCII(b, lit []byte) bool {
	for k := range lit {
		if lower(b[k]) != lower(lit[k]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
