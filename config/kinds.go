package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Kind is what an intake is, resolved from its protocol (or stats: true):
// it says which blocks of keys the intake takes (the kinds tag of each
// block field of Intake) and which checks its settings go through.
type Kind string

// The kinds of intake; all but KindStats are the protocol written in the file.
const (
	KindTCP     Kind = ProtocolTCP
	KindUDP     Kind = ProtocolUDP
	KindTLS     Kind = ProtocolTLS
	KindNetFlow Kind = ProtocolNetFlow
	KindSFlow   Kind = ProtocolSFlow
	KindHTTP    Kind = ProtocolHTTP
	// KindStats ships the appliance's own counters (stats: true).
	KindStats Kind = "stats"
)

// protocols are the kinds a protocol: names, in the order messages list them.
var protocols = []Kind{KindTCP, KindUDP, KindTLS, KindNetFlow, KindSFlow, KindHTTP}

// IsLog says whether the kind receives syslog.
func (k Kind) IsLog() bool { return k == KindTCP || k == KindUDP || k == KindTLS }

// IsFlow says whether the kind receives flows.
func (k Kind) IsFlow() bool { return k == KindNetFlow || k == KindSFlow }

// Network is the family of the port the kind binds, "tcp" or "udp"; ""
// for a stats intake, which binds nothing.
func (k Kind) Network() string {
	switch k {
	case KindTCP, KindTLS, KindHTTP:
		return "tcp"
	case KindUDP, KindNetFlow, KindSFlow:
		return "udp"
	}
	return ""
}

// block is one block field of Intake: an inline pointer to the struct of
// keys some kinds take, with those kinds in its tag.
type block struct {
	index int
	kinds []Kind
}

// blocks are Intake's block fields, read once from its tags.
var blocks = func() []block {
	var bs []block
	t := reflect.TypeFor[Intake]()
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, ok := f.Tag.Lookup("kinds"); ok {
			var kinds []Kind
			for k := range strings.SplitSeq(tag, ",") {
				kinds = append(kinds, Kind(k))
			}
			bs = append(bs, block{i, kinds})
		}
	}
	return bs
}()

// resolveKind sets the intake's kind from its protocol or stats: true,
// refuses each key given from a block its kind does not take, and gives
// it every block its kind takes, so that consumers read them without a
// nil check. The refusals are derived from the blocks' tags: no key name
// is listed here.
func (in *Intake) resolveKind(where string) []error {
	in.Protocol = strings.ToLower(strings.TrimSpace(in.Protocol))
	var errs []error
	switch k := Kind(in.Protocol); {
	case in.Stats:
		in.Kind = KindStats
	case in.Protocol == "":
		return []error{fmt.Errorf("%s: protocol is missing (%s)", where, kindList(protocols, "or"))}
	case slices.Contains(protocols, k):
		in.Kind = k
	default:
		return []error{fmt.Errorf("%s: unknown protocol %q (%s)", where, in.Protocol, kindList(protocols, "or"))}
	}
	v := reflect.ValueOf(in).Elem()
	for _, b := range blocks {
		f := v.Field(b.index)
		if slices.Contains(b.kinds, in.Kind) {
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			}
			continue
		}
		if f.IsNil() {
			continue
		}
		s := f.Elem()
		for j := range s.NumField() {
			key, _, _ := strings.Cut(s.Type().Field(j).Tag.Get("yaml"), ",")
			if key != "" && key != "-" && !s.Field(j).IsZero() {
				errs = append(errs, fmt.Errorf("%s: %s applies to %s intakes only", where, key, kindList(b.kinds, "and")))
			}
		}
		f.SetZero()
	}
	return errs
}

// kindList writes kinds as "a, b and c".
func kindList(kinds []Kind, and string) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " " + and + " " + s[len(s)-1]
}

// resolve resolves the intake's kind and fills in its blocks' defaults.
func (in *Intake) resolve(certsDir, where string) []error {
	errs := in.resolveKind(where)
	if in.Kind == "" {
		return errs // its blocks are what the file says: not read
	}
	if in.HTTP != nil {
		errs = append(errs, in.resolveHTTPIntake(where)...)
	}
	if in.TLS != nil {
		in.TLS.resolve(certsDir)
	}
	if in.Flow != nil {
		in.Flow.resolve()
	}
	if in.Report != nil && in.Report.Interval == 0 {
		in.Report.Interval = defaultStatsInterval
	}
	return errs
}

// validateKind checks the intake's settings as its kind takes them.
func (in *Intake) validateKind(where string) []error {
	switch {
	case in.Kind == KindStats:
		return in.validateStats(where)
	case in.Kind == KindHTTP:
		return in.validateHTTPIntake(where)
	case in.Kind.IsFlow():
		return in.validateFlow(where)
	case in.Kind.IsLog():
		return in.validateSyslog(where)
	}
	return nil // no kind: said by resolve
}

// where names the intake in messages: its line and name, or rank.
func (in *Intake) where(i int) string {
	if in.Name == "" {
		return fmt.Sprintf("line %d: intake #%d", in.Line, i+1)
	}
	return fmt.Sprintf("line %d: intake %q", in.Line, in.Name)
}

// resolveKinds resolves every intake's kind and blocks.
func (c *Config) resolveKinds() []error {
	var errs []error
	for i := range c.Intakes {
		in := &c.Intakes[i]
		errs = append(errs, in.resolve(c.CertsDir, in.where(i))...)
	}
	return errs
}
