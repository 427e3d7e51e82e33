package format

import (
	pb "github.com/flowgate/flowgate/proto"
)

// Values sFlow agents send for a counter they do not have.
const (
	unknownCounter32 = 1<<32 - 1
	unknownCounter64 = 1<<64 - 1
)

// appendCounters appends c as one flat JSON object: an interface's
// counters as an sFlow agent polled them, named as in the IF-MIB (ifIndex,
// ifInOctets, ...) where IANA IPFIX has no element, with eventType
// "interfaceCounters" to tell them from flows. Counters the agent marks
// unknown are left out. asString writes it as a JSON string, as appendFlow
// does.
func appendCounters(dst []byte, c *pb.InterfaceCounters, asString bool) []byte {
	o := newObject(dst, asString)
	o.str(kEventType, "interfaceCounters")
	o.uint(kIfIndex, uint64(c.IfIndex))
	o.counter32(kIfType, c.IfType)
	o.counter64(kIfSpeed, c.IfSpeed)
	o.counter32(kIfDirection, c.IfDirection)
	o.str(kIfAdminStatus, upDown(c.IfStatus&1 != 0))
	o.str(kIfOperStatus, upDown(c.IfStatus&2 != 0))
	o.counter64(kIfInOctets, c.InOctets)
	o.counter32(kIfInUcastPkts, c.InUcastPkts)
	o.counter32(kIfInMulticastPkts, c.InMulticastPkts)
	o.counter32(kIfInBroadcastPkts, c.InBroadcastPkts)
	o.counter32(kIfInDiscards, c.InDiscards)
	o.counter32(kIfInErrors, c.InErrors)
	o.counter32(kIfInUnknownProtos, c.InUnknownProtos)
	o.counter64(kIfOutOctets, c.OutOctets)
	o.counter32(kIfOutUcastPkts, c.OutUcastPkts)
	o.counter32(kIfOutMulticastPkts, c.OutMulticastPkts)
	o.counter32(kIfOutBroadcastPkts, c.OutBroadcastPkts)
	o.counter32(kIfOutDiscards, c.OutDiscards)
	o.counter32(kIfOutErrors, c.OutErrors)
	o.counter32(kIfPromiscuousMode, c.PromiscuousMode)
	o.addr(kExporterIPv4Address, kExporterIPv6Address, c.Exporter)
	o.uint(kObservationDomainId, uint64(c.ObservationDomainId))
	if c.TimeReceivedNs != 0 {
		o.uint(kCollectionTimeMilliseconds, c.TimeReceivedNs/1e6)
	}
	o.str(kFlowType, flowTypeName(c.Type))
	return o.end()
}

func (o *object) counter32(k name, v uint32) {
	if v != unknownCounter32 {
		o.uint(k, uint64(v))
	}
}

func (o *object) counter64(k name, v uint64) {
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
