package format_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
)

// maxEventBytes bounds what one record can become: every key once, every
// value a number or an address, plus what its other elements hold, which
// grow at most maxBytesPerElementByte times in the event (a byte of a
// string escaped as \u00XX, then once more in string mode; a key made up
// for an 8-byte element header). More would mean a runaway encoder.
const (
	maxEventBytes          = 4096
	maxBytesPerElementByte = 12
)

// The record targets take a record as protobuf bytes (seeds: records decoded
// from real exports, testdata/fuzz); whatever values it holds, the event is
// one flat JSON object with each key once, and bounded.

func FuzzAppendFlow(f *testing.F) {
	fuzzRecord(f, &pb.Flow{},
		func(dst []byte, m proto.Message) []byte { return format.IANA{}.AppendFlow(dst, m.(*pb.Flow)) },
		func(dst []byte, m proto.Message) []byte {
			return format.IANA{AsString: true}.AppendFlow(dst, m.(*pb.Flow))
		})
}

func FuzzAppendGoFlow2(f *testing.F) {
	fuzzRecord(f, &pb.Flow{},
		func(dst []byte, m proto.Message) []byte { return format.GoFlow2{}.AppendFlow(dst, m.(*pb.Flow)) },
		func(dst []byte, m proto.Message) []byte {
			return format.GoFlow2{IANA: format.IANA{AsString: true}}.AppendFlow(dst, m.(*pb.Flow))
		})
}

func FuzzAppendCounters(f *testing.F) {
	fuzzRecord(f, &pb.InterfaceCounters{},
		func(dst []byte, m proto.Message) []byte {
			return format.IANA{}.AppendCounters(dst, m.(*pb.InterfaceCounters))
		},
		func(dst []byte, m proto.Message) []byte {
			return format.IANA{AsString: true}.AppendCounters(dst, m.(*pb.InterfaceCounters))
		})
}

// fuzzRecord checks an encoder on records read from the fuzzer's bytes,
// and that its string form is exactly the event quoted as a JSON string.
func fuzzRecord(f *testing.F, m proto.Message, appendEvent, appendString func([]byte, proto.Message) []byte) {
	f.Fuzz(func(t *testing.T, record []byte) {
		proto.Reset(m)
		if proto.Unmarshal(record, m) != nil {
			return
		}
		prefix := []byte(`"before",`)
		out := appendEvent(bytes.Clone(prefix), m)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("the encoder changed what was before it: %q", out)
		}
		event := out[len(prefix):]
		checkFlatObject(t, event)
		if len(event) > maxEventBytes+maxBytesPerElementByte*len(record) {
			t.Fatalf("event of %d bytes for a record of %d", len(event), len(record))
		}
		quoted := appendString(bytes.Clone(prefix), m)
		if want := format.AppendBytes(bytes.Clone(prefix), event); !bytes.Equal(quoted, want) {
			t.Fatalf("string form\n%s\ndiffers from the quoted event\n%s", quoted, want)
		}
	})
}

// checkFlatObject fails unless b is one JSON object whose values are all
// strings or numbers, each key once.
func checkFlatObject(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := k.(string)
		if seen[key] {
			t.Fatalf("key %q twice: %s", key, b)
		}
		seen[key] = true
		v, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch v.(type) {
		case string, float64, bool:
		default:
			t.Fatalf("%s is %v, not a string or number: %s", key, v, b)
		}
	}
}

// FuzzAppendString checks the string encoder against encoding/json: the
// same text comes back, invalid UTF-8 included (each bad byte becomes
// U+FFFD in both), and the output stays within 6 bytes per input byte.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "tab\tnewline\ncr\r nul\x00 bell\x07 del\x7f",
		"é ü 漢字 🚀", "\u2028\u2029", "bad \xff\xfe utf-8 \xc3", "<14>1 2026-11-23T10:00:00Z host app - - - msg",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := format.AppendString(nil, s)
		if len(out) > 6*len(s)+2 {
			t.Fatalf("%d bytes for %d", len(out), len(s))
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q gave invalid JSON %s: %v", s, out, err)
		}
		ref, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q came back as %q, encoding/json gives %q", s, got, want)
		}
		if !utf8.Valid(out) {
			t.Fatalf("output is not UTF-8: %q", out)
		}
	})
}
