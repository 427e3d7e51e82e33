package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/flowgate/flowgate/aggregate"
	"github.com/flowgate/flowgate/route"
)

// Route is one rule of an intake's routes: the records it matches go to
// IntakeKey instead of the intake's own key, or are dropped. The first
// rule that matches takes a record.
type Route struct {
	Name string `yaml:"name"`
	// Match is field: condition; every condition must hold.
	Match Match `yaml:"match"`
	// IntakeKey is where the matched records go; Drop drops them (counted).
	IntakeKey string `yaml:"intake_key"`
	Drop      bool   `yaml:"drop"`

	// Line is where the rule starts in the file, for messages.
	Line int `yaml:"-"`
}

// Match is a rule's conditions, as read; route.Compile checks them.
type Match struct {
	Conds []route.Cond
	// err is what could not be read, said by validation with its line.
	err error
}

var matchType = reflect.TypeFor[Match]()

// UnmarshalYAML reads field: value, field: [values] or field: {equals |
// prefix | contains | regex: text, ignore_case: bool}. It keeps what it
// cannot read for validation to say: a bad rule is said with the others.
func (m *Match) UnmarshalYAML(n *yaml.Node) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		m.err = fmt.Errorf("line %d: match: expected field: condition lines, not %s", n.Line, describe(n))
		return nil
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i], deref(n.Content[i+1])
		c := route.Cond{Field: key.Value, Line: key.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			c.Values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				item = deref(item)
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("line %d: match: %s: expected single values in the list, not %s", item.Line, key.Value, describe(item)))
					continue
				}
				c.Values = append(c.Values, item.Value)
			}
		case yaml.MappingNode:
			sm, err := stringMatch(key.Value, v)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.String = sm
		default:
			errs = append(errs, fmt.Errorf("line %d: match: %s: expected a value, a list or a matcher, not %s", v.Line, key.Value, describe(v)))
			continue
		}
		m.Conds = append(m.Conds, c)
	}
	m.err = errors.Join(errs...)
	return nil
}

// stringMatch reads {equals | prefix | contains | regex: text, ignore_case: bool}.
func stringMatch(field string, n *yaml.Node) (*route.StringMatch, error) {
	sm := &route.StringMatch{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i], deref(n.Content[i+1])
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: match: %s: %s: expected a single value, not %s", v.Line, field, key.Value, describe(v))
		}
		switch key.Value {
		case "equals":
			sm.Equals = v.Value
		case "prefix":
			sm.Prefix = v.Value
		case "contains":
			sm.Contains = v.Value
		case "regex":
			sm.Regex = v.Value
		case "ignore_case":
			if err := v.Decode(&sm.IgnoreCase); err != nil {
				return nil, fmt.Errorf("line %d: match: %s: ignore_case: expected true or false, not %q", v.Line, field, v.Value)
			}
		default:
			return nil, fmt.Errorf("line %d: match: %s: unknown key %q (equals, prefix, contains, regex, ignore_case)", key.Line, field, key.Value)
		}
	}
	return sm, nil
}

// validateRoutes checks an intake's routes and compiles them into
// in.Table.
func (in *Intake) validateRoutes(where string) []error {
	if len(in.Routes) == 0 {
		return nil
	}
	if in.Kind == KindStats {
		return []error{fmt.Errorf("%s: routes (and drop rules) apply to intakes that receive, not to a stats intake", where)}
	}
	var errs []error
	names := map[string]int{}
	rules := make([]route.Rule, len(in.Routes))
	for i, r := range in.Routes {
		rwhere := fmt.Sprintf("line %d: route %q of intake %q", r.Line, r.Name, in.Name)
		if r.Match.err != nil {
			errs = append(errs, fmt.Errorf("%w (route %q of intake %q)", r.Match.err, r.Name, in.Name))
		}
		switch prev, dup := names[r.Name]; {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("line %d: route #%d of intake %q: name is missing", r.Line, i+1, in.Name))
		case dup:
			errs = append(errs, fmt.Errorf("%s: name already used by the route at line %d", rwhere, prev))
		default:
			names[r.Name] = r.Line
		}
		switch {
		case r.Drop && r.IntakeKey != "":
			errs = append(errs, fmt.Errorf("%s: intake_key or drop: true, not both", rwhere))
		case !r.Drop && r.IntakeKey == "":
			errs = append(errs, fmt.Errorf("%s: intake_key or drop: true is missing", rwhere))
		case !r.Drop:
			if err := checkKey(r.IntakeKey); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", rwhere, err))
			}
		}
		rules[i] = route.Rule{Name: r.Name, Match: r.Match.Conds, IntakeKey: r.IntakeKey, Drop: r.Drop, Line: r.Line}
	}
	if in.IntakeKey == "" && !slices.ContainsFunc(in.Routes, func(r Route) bool { return !r.Drop }) {
		errs = append(errs, fmt.Errorf("%s: intake_key is missing, and no route sends anywhere: the intake would ship nothing", where))
	}
	kind := route.Syslog
	if !in.Kind.IsLog() {
		kind = route.Flow
	}
	table, cerrs := route.Compile(kind, rules)
	for _, err := range cerrs {
		errs = append(errs, fmt.Errorf("%w (intake %q)", err, in.Name))
	}
	if len(errs) == 0 {
		in.Table = table
	}
	return errs
}

// SameRoutes says whether two lists of routes are the same rules, wherever
// in the file they are written.
func SameRoutes(a, b []Route) bool {
	return slices.EqualFunc(a, b, func(x, y Route) bool {
		return x.Name == y.Name && x.IntakeKey == y.IntakeKey && x.Drop == y.Drop &&
			slices.EqualFunc(x.Match.Conds, y.Match.Conds, func(c, d route.Cond) bool {
				c.Line, d.Line = 0, 0
				return reflect.DeepEqual(c, d)
			})
	})
}

// Aggregate sums the flows of an intake that share Keys over Window into
// one event (see package aggregate).
type Aggregate struct {
	Window time.Duration `yaml:"window"`
	// Keys are IANA names of the fields flows are summed by.
	Keys []string `yaml:"keys"`
}

// Bounds of an aggregation window: shorter saves little, longer holds
// more in memory and loses more to a kill -9.
const (
	minAggregateWindow = time.Second
	maxAggregateWindow = time.Hour
)

// validateAggregate checks a flow intake's aggregate block.
func (f *Flow) validateAggregate(where string) []error {
	a := f.Aggregate
	if a == nil {
		return nil
	}
	var errs []error
	if a.Window < minAggregateWindow || a.Window > maxAggregateWindow {
		errs = append(errs, fmt.Errorf("%s: aggregate.window %s is not between %s and %s", where, a.Window, minAggregateWindow, maxAggregateWindow))
	}
	if err := aggregate.Check(a.Keys); err != nil {
		errs = append(errs, fmt.Errorf("%s: aggregate: %w", where, err))
	}
	return errs
}
