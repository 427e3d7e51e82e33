package route

import (
	"regexp"
	"testing"
)

func TestRequiredLiteral(t *testing.T) {
	for _, c := range []struct {
		expr, lit string
		fold      bool
	}{
		{`EventID"?:\s*4634`, "EventID", false},
		{`(?i)logon\s+type\s*[:=]\s*3`, "LOGON", true},
		{`(abc|abd)x`, "ab", false},
		{`(?:denied ){2,}by`, "denied ", false},
		{`a?b*`, "", false},
		{`foo|bar`, "", false},
		{`(?i)kind`, "IND", true}, // 'k' folds to the Kelvin sign: left out
		{`(?i)kind of magic`, "IND OF MAGIC", true},
	} {
		n := requiredLiteral(c.expr)
		if string(n.lit) != c.lit || n.fold != c.fold {
			t.Errorf("%s: needle %q fold %v, want %q %v", c.expr, n.lit, n.fold, c.lit, c.fold)
		}
	}
}

// FuzzNeedle: with its needle, a regex or a case-insensitive contains
// takes exactly the texts it takes without.
func FuzzNeedle(f *testing.F) {
	for _, s := range [][2]string{
		{`EventID"?:\s*4634`, `{"EventID": 4634, "LogonType": 3}`},
		{`logon\s+type\s*[:=]\s*3`, `An account was logged off. LOGON TYPE: 3`},
		{`ab+c`, "xxABBC"},
		{`\x{212a}elvin`, "\u212aelvin"},
		{`s\d`, "\u017f1"},
		{`denied`, "DENIED by acl 1"},
	} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, expr, text string, ignoreCase bool) {
		if ignoreCase {
			if expr != "" {
				m, err := compileString(StringMatch{Contains: expr, IgnoreCase: true})
				if err == nil && m.match([]byte(text)) != containsFold([]byte(text), []byte(expr)) {
					t.Fatalf("contains %q ignoring case, in %q: %v with the needle", expr, text, !containsFold([]byte(text), []byte(expr)))
				}
			}
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil || expr == "" {
			return
		}
		m := strMatch{op: opRegex, re: re, need: requiredLiteral(expr)}
		if got, want := m.match([]byte(text)), re.MatchString(text); got != want {
			t.Fatalf("%q on %q: %v with the needle %q, %v without", expr, text, got, m.need.lit, want)
		}
	})
}
