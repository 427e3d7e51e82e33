// Package ie is the registry of IPFIX information elements: the name and
// abstract data type of every IANA element, of NetFlow v9's vendor field
// types (Cisco NSEL, Palo Alto Networks, ntop) and of the enterprise elements
// of the vendors whose documentation names them (Cisco, Juniper, VMware,
// ntop). Decoders use it to map
// NetFlow v9 types onto IANA's; encoders to name and type what they write.
package ie

//go:generate go run ./gen -iana ${IANA_XML} -vmware ${VMWARE_XML} -libfds ${LIBFDS}/config/system/elements -o registry_gen.go

import (
	"iter"
	"strconv"
)

// Type is an abstract data type of RFC 7012 section 3.1.
type Type uint8

// The abstract data types.
const (
	OctetArray Type = iota
	Unsigned8
	Unsigned16
	Unsigned32
	Unsigned64
	// Unsigned256 (RFC 9740) holds bit sets of up to 256 flags: written as
	// hex, as they come.
	Unsigned256
	Signed8
	Signed16
	Signed32
	Signed64
	Float32
	Float64
	Boolean
	MACAddress
	String
	DateTimeSeconds
	DateTimeMilliseconds
	DateTimeMicroseconds
	DateTimeNanoseconds
	IPv4Address
	IPv6Address
	BasicList
	SubTemplateList
	SubTemplateMultiList
)

// Element is what the registry says of one element.
type Element struct {
	// Name is the key of the element in events: IANA's name, or a vendor's
	// prefixed with it (cisco_, juniper_, vmware_, ntop_, paloalto_).
	Name string
	Type Type
}

// Private Enterprise Numbers of vendors the decoder and its tests meet.
const (
	PENCisco    = 9
	PENJuniper  = 2636
	PENVMware   = 6876
	PENFortinet = 12356
	PENPaloAlto = 25461
	PENNtop     = 35632
)

// v9Names are NetFlow v9 field types of vendors libfds does not list,
// named after their published documentation.
var v9Names = map[uint16]Element{
	// PAN-OS "NetFlow Templates": App-ID and User-ID, 32 and 64 bytes.
	56701: {"paloalto_appId", String},
	56702: {"paloalto_userId", String},
}

// Lookup returns the element id of enterprise pen (0: IANA, or a NetFlow
// v9 type). ok is false when the registry does not know it.
func Lookup(pen uint32, id uint16) (e Element, ok bool) {
	switch {
	case pen == 0 && int(id) < len(iana):
		e = iana[id]
		return e, e.Name != ""
	case pen == 0:
		if e, ok = v9Vendor[id]; ok {
			return e, true
		}
		e, ok = v9Names[id]
		return e, ok
	}
	e, ok = enterprise[uint64(pen)<<16|uint64(id)]
	return e, ok
}

// Unknown is the key of an element the registry does not know:
// element_<id> for IANA ids and v9 types, enterprise_<PEN>_<id> otherwise.
// Its value is written as hex.
func Unknown(pen uint32, id uint16) string {
	if pen == 0 {
		return "element_" + strconv.Itoa(int(id))
	}
	return "enterprise_" + strconv.FormatUint(uint64(pen), 10) + "_" + strconv.Itoa(int(id))
}

// V9Alias maps the NetFlow v9 types an older Cisco ASA sends (NSEL) onto
// the IANA elements later software sends in their place; other types are
// returned as they are.
func V9Alias(id uint16) uint16 {
	switch id {
	case 40000: // NF_F_USERNAME
		return 371 // userName
	case 40001: // NF_F_XLATE_SRC_ADDR_IPV4
		return 225 // postNATSourceIPv4Address
	case 40002: // NF_F_XLATE_DST_ADDR_IPV4
		return 226 // postNATDestinationIPv4Address
	case 40003: // NF_F_XLATE_SRC_PORT
		return 227 // postNAPTSourceTransportPort
	case 40004: // NF_F_XLATE_DST_PORT
		return 228 // postNAPTDestinationTransportPort
	case 40005: // NF_F_FW_EVENT
		return 233 // firewallEvent
	}
	return id
}

// All yields every element the registry names, with its enterprise number
// (0 for IANA elements and NetFlow v9 types) and id.
func All() iter.Seq2[Key, Element] {
	return func(yield func(Key, Element) bool) {
		for id, e := range iana {
			if e.Name != "" && !yield(Key{0, uint16(id)}, e) {
				return
			}
		}
		for _, m := range []map[uint16]Element{v9Vendor, v9Names} {
			for id, e := range m {
				if !yield(Key{0, id}, e) {
					return
				}
			}
		}
		for k, e := range enterprise {
			if !yield(Key{uint32(k >> 16), uint16(k)}, e) {
				return
			}
		}
	}
}

// Key identifies an element: its enterprise number and id.
type Key struct {
	PEN uint32
	ID  uint16
}
