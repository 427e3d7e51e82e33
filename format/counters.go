package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

// Values sFlow agents send for a counter they do not have.
const (
	unknownCounter32 = 1<<32 - 1
	unknownCounter64 = 1<<64 - 1
)

// AppendCounters appends c as one flat JSON object: an interface's
// counters as an sFlow agent polled them, named as in the IF-MIB (ifIndex,
// ifInOctets, ...) where IANA IPFIX has no element, with eventType
// "interfaceCounters" to tell them from flows. Counters the agent marks
// unknown are left out.
func AppendCounters(dst []byte, c *pb.InterfaceCounters) []byte { return appendCounters(dst, c, false) }

// AppendCountersString appends the same object as a JSON string holding it,
// as /jsons carries events: one pass, not an encoding and an escaping.
func AppendCountersString(dst []byte, c *pb.InterfaceCounters) []byte {
	return appendCounters(dst, c, true)
}

func appendCounters(dst []byte, c *pb.InterfaceCounters, asString bool) []byte {
	o := newObject(dst, asString)
	o.str("eventType", "interfaceCounters")
	o.uint("ifIndex", uint64(c.IfIndex))
	o.counter32("ifType", c.IfType)
	o.counter64("ifSpeed", c.IfSpeed)
	o.counter32("ifDirection", c.IfDirection)
	o.str("ifAdminStatus", upDown(c.IfStatus&1 != 0))
	o.str("ifOperStatus", upDown(c.IfStatus&2 != 0))
	o.counter64("ifInOctets", c.InOctets)
	o.counter32("ifInUcastPkts", c.InUcastPkts)
	o.counter32("ifInMulticastPkts", c.InMulticastPkts)
	o.counter32("ifInBroadcastPkts", c.InBroadcastPkts)
	o.counter32("ifInDiscards", c.InDiscards)
	o.counter32("ifInErrors", c.InErrors)
	o.counter32("ifInUnknownProtos", c.InUnknownProtos)
	o.counter64("ifOutOctets", c.OutOctets)
	o.counter32("ifOutUcastPkts", c.OutUcastPkts)
	o.counter32("ifOutMulticastPkts", c.OutMulticastPkts)
	o.counter32("ifOutBroadcastPkts", c.OutBroadcastPkts)
	o.counter32("ifOutDiscards", c.OutDiscards)
	o.counter32("ifOutErrors", c.OutErrors)
	o.counter32("ifPromiscuousMode", c.PromiscuousMode)
	o.addr("exporterIPv4Address", "exporterIPv6Address", c.Exporter)
	o.uint("observationDomainId", uint64(c.ObservationDomainId))
	if c.TimeReceivedNs != 0 {
		o.uint("collectionTimeMilliseconds", c.TimeReceivedNs/1e6)
	}
	o.str("flowType", flowTypeName(c.Type))
	return o.end()
}

func (o *object) counter32(k string, v uint32) {
	if v != unknownCounter32 {
		o.uint(k, uint64(v))
	}
}

func (o *object) counter64(k string, v uint64) {
	if v != unknownCounter64 {
		o.uint(k, v)
	}
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
