package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"
)

// errEmpty is a file with no document in it.
var errEmpty = errors.New("the file is empty")

// decode parses data once into a node tree, checks every key against the
// keys valid at its place, and converts the tree into c. Errors name the
// line, and the place in the words of the file (intake "Firewall"), never
// a Go type.
func decode(data []byte, c *Config) error {
	loader, err := yaml.NewLoader(bytes.NewReader(data), yaml.WithSingleDocument())
	if err != nil {
		return err
	}
	var root yaml.Node
	if err := loader.Load(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmpty
		}
		return syntaxError(data, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
		return errEmpty
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected keys and values (intakes: and its list), not %s", doc.Line, describe(doc))
	}
	k := keyChecker{places: map[yaml.Mark]valuePlace{}, left: maxValues}
	k.walk(doc, reflect.TypeFor[Config](), "")
	if len(k.errs) > 0 {
		return errors.Join(k.errs...)
	}
	if err := doc.Decode(c); err != nil {
		return k.typeErrors(err)
	}
	c.lines.note(doc)
	// Each item decoded into one element; the bounds hold against what
	// the decoder may have made of an odd item all the same.
	for i, item := range sequenceItems(doc, "intakes") {
		if i >= len(c.Intakes) {
			break
		}
		in := &c.Intakes[i]
		in.Line = item.Line
		for j, e := range sequenceItems(item, "exporters") {
			if in.Flow != nil && j < len(in.Flow.Exporters) {
				in.Flow.Exporters[j].Line = e.Line
			}
		}
		for j, r := range sequenceItems(item, "routes") {
			if j < len(in.Routes) {
				in.Routes[j].Line = r.Line
			}
		}
	}
	return nil
}

// sequenceItems returns the items of the list under key in mapping m.
func sequenceItems(m *yaml.Node, key string) []*yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		// An alias names a list written elsewhere (routes: *shared).
		if v := deref(m.Content[i+1]); m.Content[i].Value == key && v.Kind == yaml.SequenceNode {
			return v.Content
		}
	}
	return nil
}

// syntaxError says where the YAML cannot be read: the line, what the
// parser was in when it started there if elsewhere, and the line itself
// with a caret under the column.
func syntaxError(data []byte, err error) error {
	var le *yaml.LoadError
	if !errors.As(err, &le) || le.Mark.Line == 0 {
		return fmt.Errorf("not YAML: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: %s", le.Mark.Line, le.Message)
	if le.ContextMsg != "" && le.ContextMark.Line != 0 && le.ContextMark.Line != le.Mark.Line {
		fmt.Fprintf(&b, " (%s started at line %d)", le.ContextMsg, le.ContextMark.Line)
	}
	// What these mean in a hand-written file, almost always.
	switch le.Message {
	case "did not find expected '-' indicator", "did not find expected key":
		b.WriteString("; check this line's indentation against the lines above it")
	case "mapping values are not allowed in this context":
		b.WriteString("; a value holding \": \" needs quotes")
	}
	at := le.Mark
	if at.Index >= len(bytes.TrimRight(data, " \t\r\n")) && le.ContextMark.Line != 0 {
		// Past the end of the file, where nothing is to be seen: show
		// where the unfinished part starts.
		at = le.ContextMark
	}
	b.WriteString(caret(data, at))
	return errors.New(b.String())
}

// caret shows the line of mark with a caret under its column (tabs kept, so
// that the caret lines up), or nothing when the line is past the end.
func caret(data []byte, mark yaml.Mark) string {
	lines := strings.Split(string(data), "\n")
	if mark.Line > len(lines) {
		return ""
	}
	line := strings.TrimRight(lines[mark.Line-1], "\r")
	if !utf8.ValidString(line) {
		return ""
	}
	// Never a key in full, even on a broken line; masked in place keeps
	// the column of what follows.
	line = keyOnLine.ReplaceAllStringFunc(line, func(m string) string {
		sub := keyOnLine.FindStringSubmatch(m)
		return sub[1] + MaskKey(sub[2])
	})
	var pad strings.Builder
	for i, r := range []rune(line) {
		if i >= mark.Column-1 {
			break
		}
		if r == '\t' {
			pad.WriteRune('\t')
		} else {
			pad.WriteRune(' ')
		}
	}
	num := fmt.Sprint(mark.Line)
	return fmt.Sprintf("\n  %s | %s\n  %s | %s^", num, line, strings.Repeat(" ", len(num)), pad.String())
}

// keyOnLine finds an intake key's value on a line of the file, in block
// or flow style.
var keyOnLine = regexp.MustCompile(`(intake_key["']?\s*:\s*["']?)([^"',}\s]+)`)

// keyChecker walks the node tree along the Go types it decodes into.
type keyChecker struct {
	errs []error
	// places says, by the position of each value, what it is for: a type
	// error of the decoder is said with it.
	places map[yaml.Mark]valuePlace
	// left bounds the values walked: aliases of aliases can name far more
	// values than the file holds.
	left int
}

// maxValues is more values than any real configuration has.
const maxValues = 1 << 20

// valuePlace is a value's key and where that key is.
type valuePlace struct {
	where, key string
	typ        reflect.Type
	node       *yaml.Node
}

var (
	sizeType    = reflect.TypeFor[Size]()
	keyListType = reflect.TypeFor[KeyList]()
)

// walk checks a mapping against the yaml names of a struct's fields, and
// what is under each key against the field's type. where names the place
// in the words of the file: "" for the top, `intake "Firewall"`, `output
// of intake "Firewall"`.
func (k *keyChecker) walk(node *yaml.Node, t reflect.Type, where string) {
	fields := map[string]reflect.Type{}
	keysOf(t, fields)
	seen := map[string]int{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := node.Content[i], node.Content[i+1]
		if key.Value == "<<" {
			// A merge key brings the keys of another mapping: check them
			// as if written here.
			if m := deref(value); m.Kind == yaml.MappingNode {
				k.walk(m, t, where)
			}
			continue
		}
		ft, ok := fields[key.Value]
		if !ok {
			k.errs = append(k.errs, unknownKey(key, where, fields))
			continue
		}
		if prev, dup := seen[key.Value]; dup {
			k.errs = append(k.errs, fmt.Errorf("line %d: key %q given twice%s (first at line %d)", key.Line, key.Value, in(where), prev))
			continue
		}
		seen[key.Value] = key.Line
		k.value(value, ft, key.Value, where)
	}
}

// keysOf adds the yaml names of a struct's fields, and those of the
// structs it inlines (an intake's blocks), to fields.
func keysOf(t reflect.Type, fields map[string]reflect.Type) {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported():
		case name == "" && opts == "inline":
			keysOf(f.Type.Elem(), fields) // the blocks are pointers
		case name != "" && name != "-":
			fields[name] = f.Type
		}
	}
}

// value records where the value of key is, and walks into it when its
// type has keys of its own.
func (k *keyChecker) value(node *yaml.Node, t reflect.Type, key, where string) {
	if k.left--; k.left < 0 {
		if k.left == -1 {
			k.errs = append(k.errs, fmt.Errorf("line %d: more than %d values once aliases are expanded", node.Line, maxValues))
		}
		return
	}
	k.places[mark(node)] = valuePlace{where, key, t, node}
	node = deref(node)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == sizeType, t == matchType, t == keyListType:
		// Read by their own UnmarshalYAML, which checks their keys.
	case t.Kind() == reflect.Struct && node.Kind == yaml.MappingNode:
		k.walk(node, t, join(key, where))
	case t.Kind() == reflect.Slice && node.Kind == yaml.SequenceNode:
		// Items are told apart by what names them: intake "Firewall",
		// exporter 10.0.0.1, else their rank.
		for i, item := range node.Content {
			id := fmt.Sprintf("#%d", i+1)
			if v := scalarValue(item, "name"); v != "" {
				id = fmt.Sprintf("%q", v)
			} else if v := scalarValue(item, "address"); v != "" {
				id = v
			}
			k.value(item, t.Elem(), strings.TrimSuffix(key, "s")+" "+id, where)
		}
	case t.Kind() == reflect.Map && node.Kind == yaml.MappingNode:
		inMap := join(key, where)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k.places[mark(node.Content[i])] = valuePlace{inMap, node.Content[i].Value, t.Key(), node.Content[i]}
			k.value(node.Content[i+1], t.Elem(), node.Content[i].Value, inMap)
		}
	}
}

// join names a key of a place: `output of intake "Firewall"`.
func join(key, where string) string {
	if where == "" {
		return key
	}
	return key + " of " + where
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// in is " in where", or nothing at the top of the file.
func in(where string) string {
	if where == "" {
		return ""
	}
	return " in " + where
}

// unknownKey says a key has no place where it is, with the valid key
// closest to it when one is close enough to be the one meant.
func unknownKey(key *yaml.Node, where string, fields map[string]reflect.Type) error {
	best, bestDist := "", 0
	for name := range fields {
		d := editDistance(strings.ToLower(key.Value), name)
		if best == "" || d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	// Close enough: a typo or two, or a third of a long name.
	hint := ""
	if best != "" && bestDist <= max(2, utf8.RuneCountInString(key.Value)/3) && bestDist < utf8.RuneCountInString(key.Value) {
		hint = fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Errorf("line %d: unknown key %q%s%s", key.Line, key.Value, in(where), hint)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of two neighbours each count one.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j]; three rows suffice.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}

// scalarValue is the value of key in mapping m when it is a scalar.
func scalarValue(m *yaml.Node, key string) string {
	if m.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

func mark(n *yaml.Node) yaml.Mark { return yaml.Mark{Line: n.Line, Column: n.Column} }

// typeErrors says, for each value the decoder could not convert, which key
// it is for and what that key takes.
func (k *keyChecker) typeErrors(err error) error {
	var les *yaml.LoadErrors
	if !errors.As(err, &les) {
		return err
	}
	var errs []error
	for _, le := range les.Errors {
		p, ok := k.places[yaml.Mark{Line: le.Mark.Line, Column: le.Mark.Column}]
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: %s", le.Mark.Line, le.Message))
			continue
		}
		where := p.key
		if p.where != "" {
			where = p.where + ": " + p.key
		}
		// A value's own check (a size) says what is wrong with it.
		if cause := errors.Unwrap(le); (p.typ == sizeType || p.typ == keyListType) && cause != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", le.Mark.Line, where, cause))
			continue
		}
		errs = append(errs, fmt.Errorf("line %d: %s: expected %s, not %s", le.Mark.Line, where, expected(p.typ), describe(p.node)))
	}
	return errors.Join(errs...)
}

// describe says in words what a node is.
func describe(n *yaml.Node) string {
	switch deref(n).Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "keys and values"
	}
	return fmt.Sprintf("%q", n.Value)
}

// expected says in words what values of t look like.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration such as 30s, 5m or 1h"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case slices.Contains([]reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64}, t.Kind()):
		return "a whole number"
	case slices.Contains([]reflect.Kind{reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64}, t.Kind()):
		return "a whole number, 0 or more"
	case t.Kind() == reflect.String:
		return "a single value"
	case t.Kind() == reflect.Slice:
		return "a list (lines starting with -)"
	default:
		return "keys and values (key: value lines)"
	}
}
