// Package route decides, for each record an intake receives, which of the
// intake's rules takes it: the first whose conditions all hold. A rule
// sends its records to an intake key of its own or drops them. Rules are
// compiled once, at load; matching is a pure function of a syslog record
// (pb.Log) or a flow record (pb.Flow), with no allocation unless a regex
// runs.
package route

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	pb "github.com/flowgate/flowgate/proto"
)

// Kind is what an intake receives, and so which fields its rules may name.
type Kind uint8

// Kinds of intakes.
const (
	Syslog Kind = iota
	Flow
)

// None is what Table.Log and Table.Flow return when no rule takes a record.
const None = -1

// Rule is one rule as written in the configuration.
type Rule struct {
	Name string
	// Match holds the conditions; all must hold.
	Match []Cond
	// IntakeKey is where the records it takes go, unless Drop.
	IntakeKey string
	Drop      bool
	// Line is where the rule is written, for messages.
	Line int
}

// Cond is one condition: a field and the values it may have.
type Cond struct {
	Field string
	// Values, any of which matches: addresses or CIDRs for address fields,
	// numbers or ranges (1024-65535) for number fields (facility and
	// severity by name too), exact text for text fields.
	Values []string
	// String, for text fields, matches instead of Values.
	String *StringMatch
	// Line is where the condition is written, for messages.
	Line int
}

// StringMatch tests a text field; exactly one of Equals, Prefix, Contains
// and Regex (RE2) is set.
type StringMatch struct {
	Equals, Prefix, Contains, Regex string
	IgnoreCase                      bool
}

// Error is a rule that cannot be compiled.
type Error struct {
	// Rule is the index of the rule; Line where the fault is written.
	Rule, Line int
	Msg        string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Table is an intake's compiled rules. It is immutable: receivers share it.
type Table struct {
	rules []Rule
	conds [][]cond
}

// Compile checks and compiles an intake's rules; the errors are *Error, one
// per fault.
func Compile(kind Kind, rules []Rule) (*Table, []error) {
	t := &Table{rules: rules, conds: make([][]cond, len(rules))}
	var errs []error
	for i, r := range rules {
		fail := func(line int, format string, args ...any) {
			if line == 0 {
				line = r.Line
			}
			errs = append(errs, &Error{Rule: i, Line: line, Msg: fmt.Sprintf("route %q: ", r.Name) + fmt.Sprintf(format, args...)})
		}
		if len(r.Match) == 0 {
			fail(0, "match is missing: a rule with no condition would take every record")
		}
		for _, c := range r.Match {
			cc, err := compileCond(kind, c)
			if err != nil {
				fail(c.Line, "%s: %v", c.Field, err)
				continue
			}
			t.conds[i] = append(t.conds[i], cc)
		}
	}
	return t, errs
}

// Rules are the rules as written, in order; none for a nil table.
func (t *Table) Rules() []Rule {
	if t == nil {
		return nil
	}
	return t.rules
}

// Len is the number of rules.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.rules)
}

// Log returns the index of the first rule that takes l, or None.
func (t *Table) Log(l *pb.Log) int {
	for i, conds := range t.conds {
		if allLog(conds, l) {
			return i
		}
	}
	return None
}

// Flow returns the index of the first rule that takes f, or None.
func (t *Table) Flow(f *pb.Flow) int {
	for i, conds := range t.conds {
		if allFlow(conds, f) {
			return i
		}
	}
	return None
}

func allLog(conds []cond, l *pb.Log) bool {
	for i := range conds {
		if !conds[i].log(l) {
			return false
		}
	}
	return true
}

func allFlow(conds []cond, f *pb.Flow) bool {
	for i := range conds {
		if !conds[i].flow(f) {
			return false
		}
	}
	return true
}

// field says where a condition's value is.
type field uint8

const (
	// Syslog fields.
	fSender field = iota
	fHostname
	fAppName
	fProcid
	fMsgid
	fFacility
	fSeverity
	fMessage
	// Flow fields.
	fSrcAddr
	fDstAddr
	fExporter
	fPort // either side
	fNumber
	fText
)

// syslogFields are the fields of syslog rules.
var syslogFields = map[string]field{
	"source": fSender, "hostname": fHostname, "app_name": fAppName, "procid": fProcid,
	"msgid": fMsgid, "facility": fFacility, "severity": fSeverity, "message": fMessage,
}

// flowNumbers are the numeric fields of flow rules, by their short names
// and by the IANA names events carry them under.
var flowNumbers = map[string]func(*pb.Flow) uint64{
	"source_port":              func(f *pb.Flow) uint64 { return uint64(f.SrcPort) },
	"destination_port":         func(f *pb.Flow) uint64 { return uint64(f.DstPort) },
	"protocol":                 func(f *pb.Flow) uint64 { return uint64(f.Proto) },
	"ingress_interface":        func(f *pb.Flow) uint64 { return uint64(f.InIf) },
	"egress_interface":         func(f *pb.Flow) uint64 { return uint64(f.OutIf) },
	"sourceTransportPort":      func(f *pb.Flow) uint64 { return uint64(f.SrcPort) },
	"destinationTransportPort": func(f *pb.Flow) uint64 { return uint64(f.DstPort) },
	"protocolIdentifier":       func(f *pb.Flow) uint64 { return uint64(f.Proto) },
	"ingressInterface":         func(f *pb.Flow) uint64 { return uint64(f.InIf) },
	"egressInterface":          func(f *pb.Flow) uint64 { return uint64(f.OutIf) },
	"observationDomainId":      func(f *pb.Flow) uint64 { return uint64(f.ObservationDomainId) },
	"ipVersion":                func(f *pb.Flow) uint64 { return uint64(f.IpVersion) },
	"ipClassOfService":         func(f *pb.Flow) uint64 { return uint64(f.Tos) },
	"tcpControlBits":           func(f *pb.Flow) uint64 { return uint64(f.TcpFlags) },
	"octetDeltaCount":          func(f *pb.Flow) uint64 { return f.Bytes },
	"packetDeltaCount":         func(f *pb.Flow) uint64 { return f.Packets },
	"bgpSourceAsNumber":        func(f *pb.Flow) uint64 { return uint64(f.SrcAs) },
	"bgpDestinationAsNumber":   func(f *pb.Flow) uint64 { return uint64(f.DstAs) },
	"vlanId":                   func(f *pb.Flow) uint64 { return uint64(f.Vlan) },
	"postVlanId":               func(f *pb.Flow) uint64 { return uint64(f.PostVlan) },
	"dot1qVlanId":              func(f *pb.Flow) uint64 { return uint64(f.Dot1QVlan) },
	"flowDirection":            func(f *pb.Flow) uint64 { return uint64(f.Direction) },
	"icmpTypeCodeIPv4":         func(f *pb.Flow) uint64 { return uint64(f.IcmpTypeCode) },
	"icmpTypeCodeIPv6":         func(f *pb.Flow) uint64 { return uint64(f.IcmpTypeCode) },
	"samplingPacketInterval":   func(f *pb.Flow) uint64 { return f.SamplingRate },
	"flowEndReason":            func(f *pb.Flow) uint64 { return uint64(f.FlowEndReason) },
	"ethernetType":             func(f *pb.Flow) uint64 { return uint64(f.Etype) },
	"ipTTL":                    func(f *pb.Flow) uint64 { return uint64(f.IpTtl) },
	"sourceIPv4PrefixLength":   func(f *pb.Flow) uint64 { return uint64(f.SrcMask) },
	"destinationIPv4PrefixLength": func(f *pb.Flow) uint64 {
		return uint64(f.DstMask)
	},
	"sourceMacAddress":      func(f *pb.Flow) uint64 { return f.SrcMac },
	"destinationMacAddress": func(f *pb.Flow) uint64 { return f.DstMac },
}

// flowTexts are the text fields of flow rules, the names enrichment gives.
var flowTexts = map[string]func(*pb.Flow) string{
	"exporterName":        func(f *pb.Flow) string { return f.ExporterName },
	"interfaceName":       func(f *pb.Flow) string { return f.InIfName },
	"egressInterfaceName": func(f *pb.Flow) string { return f.OutIfName },
}

// flowAddrs are the address fields of flow rules.
var flowAddrs = map[string]field{
	"source": fSrcAddr, "destination": fDstAddr, "exporter": fExporter,
	"sourceIPv4Address": fSrcAddr, "sourceIPv6Address": fSrcAddr,
	"destinationIPv4Address": fDstAddr, "destinationIPv6Address": fDstAddr,
	"exporterIPv4Address": fExporter, "exporterIPv6Address": fExporter,
}

// Fields names the fields rules of kind may test, sorted.
func Fields(kind Kind) []string {
	var names []string
	if kind == Syslog {
		for n := range syslogFields {
			names = append(names, n)
		}
	} else {
		names = append(names, "port")
		for n := range flowNumbers {
			names = append(names, n)
		}
		for n := range flowTexts {
			names = append(names, n)
		}
		for n := range flowAddrs {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// cond is a compiled condition.
type cond struct {
	field    field
	prefixes []netip.Prefix
	ranges   []numRange
	number   func(*pb.Flow) uint64
	text     func(*pb.Flow) string
	str      strMatch
}

type numRange struct{ lo, hi uint64 }

func compileCond(kind Kind, c Cond) (cond, error) {
	var cc cond
	var known bool
	if kind == Syslog {
		cc.field, known = syslogFields[c.Field]
	} else if cc.field, known = flowAddrs[c.Field]; !known {
		if c.Field == "port" {
			cc.field, known = fPort, true
		} else if cc.number, known = flowNumbers[c.Field]; known {
			cc.field = fNumber
		} else if cc.text, known = flowTexts[c.Field]; known {
			cc.field = fText
		}
	}
	if !known {
		return cc, fmt.Errorf("unknown field (%s)", strings.Join(Fields(kind), ", "))
	}
	if c.String != nil && len(c.Values) > 0 {
		return cc, fmt.Errorf("a value or a matcher, not both")
	}
	if c.String == nil && len(c.Values) == 0 {
		return cc, fmt.Errorf("no value given")
	}
	var err error
	switch cc.field {
	case fSender, fSrcAddr, fDstAddr, fExporter:
		if c.String != nil {
			return cc, fmt.Errorf("takes addresses or CIDRs, not a text matcher")
		}
		cc.prefixes, err = parsePrefixes(c.Values)
	case fFacility, fSeverity, fPort, fNumber:
		if c.String != nil {
			return cc, fmt.Errorf("takes numbers, not a text matcher")
		}
		names := map[string]uint64(nil)
		switch cc.field {
		case fFacility:
			names = facilityNames
		case fSeverity:
			names = severityNames
		}
		cc.ranges, err = parseRanges(c.Values, names)
	default: // text
		sm := c.String
		if sm == nil {
			// A value or a list of them: any equal.
			sm = &StringMatch{Regex: "^(?:" + quoteAll(c.Values) + ")$"}
			if len(c.Values) == 1 {
				sm = &StringMatch{Equals: c.Values[0]}
			}
		}
		cc.str, err = compileString(*sm)
	}
	return cc, err
}

func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = regexp.QuoteMeta(v)
	}
	return strings.Join(q, "|")
}

func parsePrefixes(values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a CIDR", v)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR", v)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func parseRanges(values []string, names map[string]uint64) ([]numRange, error) {
	out := make([]numRange, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if n, ok := names[strings.ToLower(v)]; ok {
			out = append(out, numRange{n, n})
			continue
		}
		lo, hi, isRange := strings.Cut(v, "-")
		a, err1 := strconv.ParseUint(lo, 10, 64)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 64)
		}
		if err1 != nil || err2 != nil || b < a {
			if names != nil {
				return nil, fmt.Errorf("%q is not a number or a name (%s)", v, strings.Join(sortedKeys(names), ", "))
			}
			return nil, fmt.Errorf("%q is not a number or a range such as 1024-65535", v)
		}
		out = append(out, numRange{a, b})
	}
	return out, nil
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var facilityNames = map[string]uint64{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

var severityNames = map[string]uint64{
	"emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}

func (c *cond) log(l *pb.Log) bool {
	switch c.field {
	case fSender:
		return inPrefixes(c.prefixes, l.Sender)
	case fHostname:
		return c.str.match(l.Hostname)
	case fAppName:
		return c.str.match(l.AppName)
	case fProcid:
		return c.str.match(l.Procid)
	case fMsgid:
		return c.str.match(l.Msgid)
	case fMessage:
		return c.str.match(l.Msg)
	case fFacility:
		return inRanges(c.ranges, uint64(l.Pri>>3))
	case fSeverity:
		return inRanges(c.ranges, uint64(l.Pri&7))
	}
	return false
}

func (c *cond) flow(f *pb.Flow) bool {
	switch c.field {
	case fSrcAddr:
		return inPrefixes(c.prefixes, f.SrcAddr)
	case fDstAddr:
		return inPrefixes(c.prefixes, f.DstAddr)
	case fExporter:
		return inPrefixes(c.prefixes, f.Exporter)
	case fPort:
		return inRanges(c.ranges, uint64(f.SrcPort)) || inRanges(c.ranges, uint64(f.DstPort))
	case fNumber:
		return inRanges(c.ranges, c.number(f))
	case fText:
		return c.str.matchString(c.text(f))
	}
	return false
}

// inPrefixes says whether the 4- or 16-byte address b is in one of ps.
func inPrefixes(ps []netip.Prefix, b []byte) bool {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func inRanges(rs []numRange, n uint64) bool {
	for _, r := range rs {
		if n >= r.lo && n <= r.hi {
			return true
		}
	}
	return false
}

// strMatch is a compiled StringMatch.
type strMatch struct {
	op         uint8
	lit        []byte
	litString  string
	ignoreCase bool
	re         *regexp.Regexp
	// need is what text must hold for re, or for contains ignoring case,
	// to match; unset when it cannot be told.
	need needle
}

const (
	opEquals uint8 = iota
	opPrefix
	opContains
	opRegex
)

func compileString(sm StringMatch) (strMatch, error) {
	set := 0
	m := strMatch{ignoreCase: sm.IgnoreCase}
	for _, o := range []struct {
		op  uint8
		lit string
	}{{opEquals, sm.Equals}, {opPrefix, sm.Prefix}, {opContains, sm.Contains}, {opRegex, sm.Regex}} {
		if o.lit != "" {
			set++
			m.op, m.litString = o.op, o.lit
		}
	}
	if set != 1 {
		return m, fmt.Errorf("give exactly one of equals, prefix, contains or regex")
	}
	m.lit = []byte(m.litString)
	if m.op == opRegex {
		expr := m.litString
		if sm.IgnoreCase {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return m, fmt.Errorf("invalid regex: %v", err)
		}
		m.re = re
		m.need = requiredLiteral(expr)
	}
	if m.op == opContains && sm.IgnoreCase {
		// Only a needle that is the whole literal can stand for it.
		if n, _ := literalNeedle([]rune(m.litString), true); string(n.lit) == m.litString {
			m.need = n
		}
	}
	return m, nil
}

func (m *strMatch) match(b []byte) bool {
	switch m.op {
	case opEquals:
		if m.ignoreCase {
			return bytes.EqualFold(b, m.lit)
		}
		return bytes.Equal(b, m.lit)
	case opPrefix:
		if len(b) < len(m.lit) {
			return false
		}
		if m.ignoreCase {
			return bytes.EqualFold(b[:len(m.lit)], m.lit)
		}
		return bytes.HasPrefix(b, m.lit)
	case opContains:
		if m.ignoreCase {
			if m.need.lit != nil {
				return m.need.in(b)
			}
			return containsFold(b, m.lit)
		}
		return bytes.Contains(b, m.lit)
	default:
		if m.need.lit != nil && !m.need.in(b) {
			return false
		}
		return m.re.Match(b)
	}
}

func (m *strMatch) matchString(s string) bool {
	switch m.op {
	case opEquals:
		if m.ignoreCase {
			return strings.EqualFold(s, m.litString)
		}
		return s == m.litString
	case opPrefix:
		if len(s) < len(m.litString) {
			return false
		}
		if m.ignoreCase {
			return strings.EqualFold(s[:len(m.litString)], m.litString)
		}
		return strings.HasPrefix(s, m.litString)
	case opContains:
		if m.ignoreCase {
			return containsFold([]byte(s), m.lit)
		}
		return strings.Contains(s, m.litString)
	default:
		return m.re.MatchString(s)
	}
}

// containsFold is bytes.Contains under Unicode simple case folding,
// without allocating: each position is compared with EqualFold.
func containsFold(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// Describe says what a rule does, for `flowgate check` and the dry run:
// its conditions as written and where its records go, keys masked by mask.
func (r Rule) Describe(mask func(string) string) string {
	var conds []string
	for _, c := range r.Match {
		conds = append(conds, c.describe())
	}
	to := "→ dropped"
	if !r.Drop {
		to = "→ " + mask(r.IntakeKey)
	}
	return fmt.Sprintf("%s: %s %s", r.Name, strings.Join(conds, " and "), to)
}

func (c Cond) describe() string {
	if c.String == nil {
		if len(c.Values) == 1 {
			return c.Field + "=" + c.Values[0]
		}
		return c.Field + " in [" + strings.Join(c.Values, ", ") + "]"
	}
	s := c.String
	op, v := "equals", s.Equals
	switch {
	case s.Prefix != "":
		op, v = "prefix", s.Prefix
	case s.Contains != "":
		op, v = "contains", s.Contains
	case s.Regex != "":
		op, v = "regex", s.Regex
	}
	if s.IgnoreCase {
		op += " (ignore case)"
	}
	return fmt.Sprintf("%s %s %q", c.Field, op, v)
}
