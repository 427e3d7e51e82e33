// Package aggregate sums the flow records that share key fields over a
// window into one record per key: summed octetDeltaCount and
// packetDeltaCount, a deltaFlowCount, the earliest start and the latest
// end; the key fields and the exporter are kept, every other field is
// dropped. Totals are conserved: the sums of the records a window emits
// are those of the records it took.
package aggregate

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// deltaFlowCountID is IANA element 3, deltaFlowCount: how many flows an
// aggregated record stands for.
const deltaFlowCountID = 3

// key is one field a group is keyed by.
type key struct {
	field pb.Field
	// put appends the field's value to a group's key.
	put func(dst []byte, f *pb.Flow) []byte
	// copy sets the field of the group's record.
	copy func(dst, src *pb.Flow)
}

func u32(get func(*pb.Flow) uint32, set func(*pb.Flow, uint32)) (func([]byte, *pb.Flow) []byte, func(dst, src *pb.Flow)) {
	return func(b []byte, f *pb.Flow) []byte { return binary.BigEndian.AppendUint32(b, get(f)) },
		func(dst, src *pb.Flow) { set(dst, get(src)) }
}

func addr(get func(*pb.Flow) []byte, set func(*pb.Flow, []byte)) (func([]byte, *pb.Flow) []byte, func(dst, src *pb.Flow)) {
	return func(b []byte, f *pb.Flow) []byte {
			a := get(f)
			return append(append(b, byte(len(a))), a...)
		},
		func(dst, src *pb.Flow) { set(dst, slices.Clone(get(src))) }
}

// keys are the fields a window may be keyed by, by their IANA names.
var keys = func() map[string]key {
	addrKey := func(field pb.Field, get func(*pb.Flow) []byte, set func(*pb.Flow, []byte)) key {
		put, cp := addr(get, set)
		return key{field, put, cp}
	}
	src := addrKey(pb.Field_SRC_ADDR, func(f *pb.Flow) []byte { return f.SrcAddr }, func(f *pb.Flow, v []byte) { f.SrcAddr = v })
	dst := addrKey(pb.Field_DST_ADDR, func(f *pb.Flow) []byte { return f.DstAddr }, func(f *pb.Flow, v []byte) { f.DstAddr = v })
	num := func(field pb.Field, get func(*pb.Flow) uint32, set func(*pb.Flow, uint32)) key {
		put, cp := u32(get, set)
		return key{field, put, cp}
	}
	return map[string]key{
		"sourceIPv4Address":        src,
		"sourceIPv6Address":        src,
		"destinationIPv4Address":   dst,
		"destinationIPv6Address":   dst,
		"sourceTransportPort":      num(pb.Field_SRC_PORT, func(f *pb.Flow) uint32 { return f.SrcPort }, func(f *pb.Flow, v uint32) { f.SrcPort = v }),
		"destinationTransportPort": num(pb.Field_DST_PORT, func(f *pb.Flow) uint32 { return f.DstPort }, func(f *pb.Flow, v uint32) { f.DstPort = v }),
		"protocolIdentifier":       num(pb.Field_PROTO, func(f *pb.Flow) uint32 { return f.Proto }, func(f *pb.Flow, v uint32) { f.Proto = v }),
		"ipClassOfService":         num(pb.Field_TOS, func(f *pb.Flow) uint32 { return f.Tos }, func(f *pb.Flow, v uint32) { f.Tos = v }),
		"ingressInterface":         num(pb.Field_IN_IF, func(f *pb.Flow) uint32 { return f.InIf }, func(f *pb.Flow, v uint32) { f.InIf = v }),
		"egressInterface":          num(pb.Field_OUT_IF, func(f *pb.Flow) uint32 { return f.OutIf }, func(f *pb.Flow, v uint32) { f.OutIf = v }),
		"bgpSourceAsNumber":        num(pb.Field_SRC_AS, func(f *pb.Flow) uint32 { return f.SrcAs }, func(f *pb.Flow, v uint32) { f.SrcAs = v }),
		"bgpDestinationAsNumber":   num(pb.Field_DST_AS, func(f *pb.Flow) uint32 { return f.DstAs }, func(f *pb.Flow, v uint32) { f.DstAs = v }),
		"vlanId":                   num(pb.Field_VLAN, func(f *pb.Flow) uint32 { return f.Vlan }, func(f *pb.Flow, v uint32) { f.Vlan = v }),
		"flowDirection":            num(pb.Field_DIRECTION, func(f *pb.Flow) uint32 { return f.Direction }, func(f *pb.Flow, v uint32) { f.Direction = v }),
	}
}()

// Keys names the fields a window may be keyed by, sorted.
func Keys() []string {
	names := make([]string, 0, len(keys))
	for n := range keys {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Check says what is wrong with a list of key names, if anything.
func Check(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("keys is missing: the fields flows are summed by (%s)", strings.Join(Keys(), ", "))
	}
	for _, n := range names {
		if _, ok := keys[n]; !ok {
			return fmt.Errorf("key %q is not one flows can be summed by (%s)", n, strings.Join(Keys(), ", "))
		}
	}
	return nil
}

// Aggregator sums one worker's records over windows. It is not safe for
// concurrent use.
type Aggregator struct {
	window time.Duration
	keys   []key
	// present are the bits of the fields an aggregated record carries.
	present uint64
	groups  map[string]*group
	// order is the groups in the order they appeared, for a stable output.
	order []*group
	start time.Time
	buf   []byte
}

type group struct {
	f     *pb.Flow
	flows uint64
}

// New returns an aggregator over windows of window, keyed by the fields
// named (Check).
func New(window time.Duration, names []string) (*Aggregator, error) {
	if err := Check(names); err != nil {
		return nil, err
	}
	a := &Aggregator{window: window, groups: map[string]*group{},
		present: 1<<uint(pb.Field_BYTES) | 1<<uint(pb.Field_PACKETS) | 1<<uint(pb.Field_START) | 1<<uint(pb.Field_END)}
	seen := map[pb.Field]bool{}
	for _, n := range names {
		k := keys[n]
		if !seen[k.field] {
			seen[k.field] = true
			a.keys = append(a.keys, k)
			a.present |= 1 << uint(k.field)
		}
	}
	return a, nil
}

// Add folds f into its group; f is not kept. now starts the window when
// none is open.
func (a *Aggregator) Add(f *pb.Flow, now time.Time) {
	if len(a.order) == 0 {
		a.start = now
	}
	b := append(a.buf[:0], byte(len(f.Exporter)))
	b = append(b, f.Exporter...)
	for _, k := range a.keys {
		b = k.put(b, f)
	}
	a.buf = b
	g := a.groups[string(b)]
	if g == nil {
		r := &pb.Flow{Type: f.Type, Present: a.present, Exporter: slices.Clone(f.Exporter), ExporterName: f.ExporterName,
			ObservationDomainId: f.ObservationDomainId, StartMs: f.StartMs, EndMs: f.EndMs}
		// The observation domain goes with the exporter, when it came.
		r.Present |= f.Present & (1 << uint(pb.Field_OBSERVATION_DOMAIN))
		for _, k := range a.keys {
			k.copy(r, f)
		}
		if f.Present&(1<<uint(pb.Field_IP_VERSION)) != 0 && r.Present&(1<<uint(pb.Field_SRC_ADDR)|1<<uint(pb.Field_DST_ADDR)) != 0 {
			// The version follows from a kept address.
			r.IpVersion = f.IpVersion
			r.Present |= 1 << uint(pb.Field_IP_VERSION)
		}
		g = &group{f: r}
		a.groups[string(b)] = g
		a.order = append(a.order, g)
	}
	r := g.f
	g.flows++
	r.Bytes += f.Bytes
	r.Packets += f.Packets
	r.StartMs = min(r.StartMs, f.StartMs)
	r.EndMs = max(r.EndMs, f.EndMs)
	r.TimeReceivedNs = max(r.TimeReceivedNs, f.TimeReceivedNs)
}

// Due says whether the open window has ended at now.
func (a *Aggregator) Due(now time.Time) bool {
	return len(a.order) > 0 && now.Sub(a.start) >= a.window
}

// Len is the number of groups of the open window.
func (a *Aggregator) Len() int { return len(a.order) }

// Flush appends one record per group to dst, in the order the groups
// appeared, and starts a new window. The records are the caller's: the
// aggregator keeps none.
func (a *Aggregator) Flush(dst []*pb.Flow) []*pb.Flow {
	for _, g := range a.order {
		g.f.Elements = pb.AppendElement(g.f.Elements, 0, deltaFlowCountID, binary.BigEndian.AppendUint64(nil, g.flows))
		dst = append(dst, g.f)
	}
	clear(a.groups)
	clear(a.order)
	a.order = a.order[:0]
	return dst
}
