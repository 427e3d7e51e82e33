package pb

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fill sets every field of m to a value that depends on seed: a field the
// fast codec forgot would not survive the round trips below.
func fill(m protoreflect.Message, seed int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		n := seed*1000 + i + 1
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.BoolKind:
			v = protoreflect.ValueOfBool(true)
		case protoreflect.EnumKind:
			v = protoreflect.ValueOfEnum(protoreflect.EnumNumber(1 + n%2))
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
			v = protoreflect.ValueOfInt32(int32(-n))
		case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
			v = protoreflect.ValueOfInt64(int64(-n) << 33)
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
			v = protoreflect.ValueOfUint32(uint32(n) << 20)
		case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			v = protoreflect.ValueOfUint64(uint64(n) << 40)
		case protoreflect.StringKind:
			v = protoreflect.ValueOfString("é" + string(rune('a'+n%26)))
		case protoreflect.BytesKind:
			v = protoreflect.ValueOfBytes([]byte{byte(n), byte(n >> 8), 0, 255})
		case protoreflect.MessageKind:
			if fd.IsList() {
				list := m.Mutable(fd).List()
				for j := range 2 {
					e := list.NewElement()
					fill(e.Message(), seed+j+1)
					list.Append(e)
				}
			}
			continue
		default:
			panic("kind not handled: " + fd.Kind().String())
		}
		m.Set(fd, v)
	}
}

func TestFastCodecMatchesProtobuf(t *testing.T) {
	var want Batch
	fill(want.ProtoReflect(), 1)
	if len(want.Flows) == 0 || len(want.Logs) == 0 || len(want.Counters) == 0 {
		t.Fatal("the batch was not filled")
	}
	fast, err := want.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	var got Batch
	if err := proto.Unmarshal(fast, &got); err != nil || !proto.Equal(&got, &want) {
		t.Fatalf("MarshalVT, read by protobuf: %v\n%v\nwant %v", err, &got, &want)
	}
	// Unmarshalling into a batch that held more records before, emptied
	// by ResetVT or by Clear (as the shipper does, reading in place:
	// Unsafe), leaves nothing of them: read again, the full batch, and one
	// whose records have a field each.
	sparse := &Batch{Flows: []*Flow{{SrcPort: 1}, {DstAddr: []byte{192, 0, 2, 1}}}, Logs: []*Log{{Pri: 3}},
		Counters: []*InterfaceCounters{{IfIndex: 4}}}
	for _, w := range []*Batch{&want, sparse} {
		data, err := proto.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		for name, unmarshal := range map[string]func(*Batch, []byte) error{
			"UnmarshalVT":       (*Batch).UnmarshalVT,
			"UnmarshalVTUnsafe": (*Batch).UnmarshalVTUnsafe,
		} {
			for empty, emptying := range map[string]func(*Batch){"ResetVT": (*Batch).ResetVT, "Clear": (*Batch).Clear} {
				var reused Batch
				fill(reused.ProtoReflect(), 7)
				reused.Flows = append(reused.Flows, &Flow{SrcPort: 9})
				emptying(&reused)
				if err := unmarshal(&reused, data); err != nil || !proto.Equal(&reused, w) {
					t.Fatalf("%s after %s, of protobuf's bytes: %v\n%v\nwant %v", name, empty, err, &reused, w)
				}
			}
		}
	}
}

// The shipper reads buffer messages in place (UnmarshalVTUnsafe): whatever
// the bytes, it reads what UnmarshalVT reads, or refuses them as it does.
func FuzzUnmarshalVTUnsafe(f *testing.F) {
	for seed := range 3 {
		var b Batch
		fill(b.ProtoReflect(), seed)
		data, err := b.MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var copied, inPlace Batch
		errCopied, errInPlace := copied.UnmarshalVT(data), inPlace.UnmarshalVTUnsafe(data)
		if (errCopied == nil) != (errInPlace == nil) {
			t.Fatalf("UnmarshalVT: %v, UnmarshalVTUnsafe: %v", errCopied, errInPlace)
		}
		if errCopied == nil && !proto.Equal(&copied, &inPlace) {
			t.Fatalf("UnmarshalVTUnsafe read\n%v\nwhere UnmarshalVT read\n%v", &inPlace, &copied)
		}
	})
}

// BenchmarkReadMessage is the shipper's reading of one buffer message of
// 25 flows into the records kept from the last one: emptied by ResetVT,
// then by Clear (ns/op per message).
func BenchmarkReadMessage(b *testing.B) {
	var m Batch
	for i := range 25 {
		m.Flows = append(m.Flows, &Flow{Type: FlowType_IPFIX, Present: 1<<20 - 1, TimeReceivedNs: 1_764_000_000_000_000_000,
			Exporter: []byte{127, 0, 0, 2}, SrcAddr: []byte{10, 0, 0, byte(i)}, DstAddr: []byte{198, 18, 0, 7},
			SrcPort: uint32(1024 + i), DstPort: 443, Proto: 6, Bytes: 1500, Packets: 3, InIf: 1, OutIf: 2,
			StartMs: 1_764_000_000_000, EndMs: 1_764_000_001_000, FlowEndReason: 3, ObservationDomainId: 1})
	}
	data, err := m.MarshalVT()
	if err != nil {
		b.Fatal(err)
	}
	for name, empty := range map[string]func(*Batch){"ResetVT": (*Batch).ResetVT, "Clear": (*Batch).Clear} {
		b.Run(name, func(b *testing.B) {
			var records Batch
			b.ReportAllocs()
			for b.Loop() {
				empty(&records)
				if err := records.UnmarshalVTUnsafe(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
