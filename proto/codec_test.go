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
	std, err := proto.Marshal(&want)
	if err != nil {
		t.Fatal(err)
	}
	// Unmarshalling into a batch that held more records before, as the
	// shipper does (in place: Unsafe), leaves nothing of them.
	for name, unmarshal := range map[string]func(*Batch, []byte) error{
		"UnmarshalVT":       (*Batch).UnmarshalVT,
		"UnmarshalVTUnsafe": (*Batch).UnmarshalVTUnsafe,
	} {
		var reused Batch
		fill(reused.ProtoReflect(), 7)
		reused.Flows = append(reused.Flows, &Flow{SrcPort: 9})
		reused.ResetVT()
		if err := unmarshal(&reused, std); err != nil || !proto.Equal(&reused, &want) {
			t.Fatalf("%s of protobuf's bytes: %v\n%v\nwant %v", name, err, &reused, &want)
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
