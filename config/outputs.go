package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// outputLines are where the file writes its outputs, for messages: kept
// apart from Output and Intake, which a reload compares, so that a line
// moved is no change.
type outputLines struct {
	// topOutput and topOutputs are the lines of the top-level keys, 0
	// when absent.
	topOutput, topOutputs int
	// topItems are the lines of the top-level outputs: items.
	topItems []int
	// intakes are, by intake index, the lines of its keys and items.
	intakes map[int]intakeOutputLines
}

type intakeOutputLines struct {
	output, outputs int
	items           []int
}

// note records where doc writes its output lists.
func (l *outputLines) note(doc *yaml.Node) {
	l.topOutput, l.topOutputs = keyLine(doc, "output"), keyLine(doc, "outputs")
	l.topItems = itemLines(doc, "outputs")
	l.intakes = map[int]intakeOutputLines{}
	for i, item := range sequenceItems(doc, "intakes") {
		l.intakes[i] = intakeOutputLines{output: keyLine(item, "output"), outputs: keyLine(item, "outputs"), items: itemLines(item, "outputs")}
	}
}

// keyLine is the line of key in mapping m, 0 when m has no such key.
func keyLine(m *yaml.Node, key string) int {
	if m.Kind != yaml.MappingNode {
		return 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return 0
}

func itemLines(m *yaml.Node, key string) []int {
	var lines []int
	for _, item := range sequenceItems(m, key) {
		lines = append(lines, item.Line)
	}
	return lines
}

// item is the line of an intake's j-th output as written: its own item,
// or the top-level one it ships with.
func (l *outputLines) item(intake, j int) int {
	in := l.intakes[intake]
	switch {
	case in.outputs != 0:
		if j < len(in.items) {
			return in.items[j]
		}
		return in.outputs
	case in.output != 0:
		return in.output
	case l.topOutputs != 0 && j < len(l.topItems):
		return l.topItems[j]
	}
	return l.topOutput
}

// checkOutputLists says what is wrong with the top-level output keys, once
// for every intake that ships with them: both given, an empty list, the
// list's names and places.
func (c *Config) checkOutputLists() []error {
	var errs []error
	l := c.lines
	if l.topOutput != 0 && l.topOutputs != 0 {
		errs = append(errs, fmt.Errorf("line %d: output and outputs (line %d) both given: outputs: lists every output, one is a list of one", l.topOutputs, l.topOutput))
	}
	if l.topOutputs != 0 && len(c.Outputs) == 0 {
		errs = append(errs, fmt.Errorf("line %d: outputs is empty: list one output or more", l.topOutputs))
	}
	return append(errs, checkList(c.Outputs, "outputs", func(j int) int {
		if j < len(l.topItems) {
			return l.topItems[j]
		}
		return l.topOutputs
	})...)
}

// outputsOf is the outputs the i-th intake ships to, as written: its own
// outputs or output, else the top-level ones. An empty list (an error)
// ships as if it were not given.
func (c *Config) outputsOf(i int, top Output) []Output {
	in := &c.Intakes[i]
	switch {
	case len(in.Outputs) > 0:
		return in.Outputs
	case in.Output != nil:
		return []Output{*in.Output}
	case len(c.Outputs) > 0:
		return c.Outputs
	}
	return []Output{top}
}

// validateOutputList checks the i-th intake's own list of outputs (its
// items resolved): not both output and outputs, not empty, names valid
// and distinct, no two outputs sending to the same place.
func (c *Config) validateOutputList(i int) []error {
	var errs []error
	in := &c.Intakes[i]
	l := c.lines.intakes[i]
	if l.outputs == 0 {
		return nil
	}
	if l.output != 0 {
		errs = append(errs, fmt.Errorf("line %d: intake %q: output and outputs (line %d) both given: outputs: lists every output, one is a list of one", l.outputs, in.Name, l.output))
	}
	if len(l.items) == 0 {
		errs = append(errs, fmt.Errorf("line %d: intake %q: outputs is empty: list one output or more", l.outputs, in.Name))
		return errs
	}
	return append(errs, checkList(in.Outputs, fmt.Sprintf("intake %q", in.Name), func(j int) int { return c.lines.item(i, j) })...)
}

// outputName is what a name in outputs: may be: it goes in the shipper's
// name (intake#name), in metrics labels and in buffer subjects.
var outputName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// checkList checks the names of a list of outputs (valid and distinct) and
// that no two send to the same place, where each event would go twice.
// line gives the line of the j-th item.
func checkList(outs []Output, where string, line func(int) int) []error {
	var errs []error
	names, places := map[string]int{}, map[string]int{}
	for j := range outs {
		o := &outs[j]
		name := o.Name
		if name == "" {
			name = strconv.Itoa(j + 1)
		}
		if !outputName.MatchString(name) {
			errs = append(errs, fmt.Errorf("line %d: %s: output name %q: expected 1 to 64 letters, digits, '.', '_' or '-'", line(j), where, name))
		} else if prev, dup := names[name]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s: output name %q already used by the output at line %d", line(j), where, name, prev))
		} else {
			names[name] = line(j)
		}
		place := strings.TrimSpace(strings.ToLower(o.Transport) + " " + o.Endpoint + o.URL + o.Path)
		if prev, dup := places[place]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s: output %q sends where the output at line %d does (%s): each event would go there twice", line(j), where, name, prev, place))
		} else {
			places[place] = line(j)
		}
	}
	return errs
}

// checkShipperNames refuses an intake named as another intake's output
// ships (Firewall#loggly): they would share a buffer subject.
func (c *Config) checkShipperNames() []error {
	outputs := map[string]string{}
	for i := range c.Intakes {
		in := &c.Intakes[i]
		for j := 1; j < len(in.Outputs); j++ {
			outputs[in.Name+"#"+in.Outputs[j].Name] = fmt.Sprintf("output %q of intake %q", in.Outputs[j].Name, in.Name)
		}
	}
	var errs []error
	for i := range c.Intakes {
		in := &c.Intakes[i]
		if of, ok := outputs[in.Name]; ok {
			errs = append(errs, fmt.Errorf("line %d: intake %q: the name is the one %s ships as: rename either", in.Line, in.Name, of))
		}
	}
	return errs
}
