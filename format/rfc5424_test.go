package format

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/decoder/syslog"
	pb "github.com/flowgate/flowgate/proto"
)

var at = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

func TestSyslogAppendLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  *pb.Log
		want string
	}{
		{"full header", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Sender: []byte{192, 0, 2, 1}, Pri: 34, Hostname: []byte("fw01"), AppName: []byte("sshd"), Procid: []byte("42"), Msgid: []byte("ID47"), Msg: []byte("hello")},
			`<34>1 2026-11-23T10:00:00.123456Z fw01 sshd 42 LOG [SEKOIA@53288 intake_key="KEY-1234567"] hello`},
		{"sender's address as hostname, sender's SD kept", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Sender: []byte{192, 0, 2, 1}, Pri: 13, StructuredData: []byte(`[x@1 a="b"]`), Msg: []byte("m")},
			`<13>1 2026-11-23T10:00:00.123456Z 192.0.2.1 - - LOG [SEKOIA@53288 intake_key="KEY-1234567"][x@1 a="b"] m`},
		{"IPv6 sender", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Sender: []byte{0x20, 1, 0xd, 0xb8, 15: 1}, Pri: 13},
			`<13>1 2026-11-23T10:00:00.123456Z 2001:db8::1 - - LOG [SEKOIA@53288 intake_key="KEY-1234567"] `},
		{"the timestamp an HTTP client gave", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), TimestampNs: at.Add(-time.Hour).UnixNano(), Sender: []byte{127, 0, 0, 1}, Pri: 13, Msg: []byte("m")},
			`<13>1 2026-11-23T09:00:00.123456Z 127.0.0.1 - - LOG [SEKOIA@53288 intake_key="KEY-1234567"] m`},
		{"a parsed header's own timestamp is not kept", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), TimestampNs: at.Add(-time.Hour).UnixNano(), Format: pb.LogFormat_RFC3164, Sender: []byte{127, 0, 0, 1}, Pri: 13, Msg: []byte("m")},
			`<13>1 2026-11-23T10:00:00.123456Z 127.0.0.1 - - LOG [SEKOIA@53288 intake_key="KEY-1234567"] m`},
		{"fields cut and cleaned", &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Pri: 200, Hostname: []byte("a b\xff"), AppName: []byte(strings.Repeat("x", 60)), Msg: []byte("m")},
			`<191>1 2026-11-23T10:00:00.123456Z a_b_ ` + strings.Repeat("x", 48) + ` - LOG [SEKOIA@53288 intake_key="KEY-1234567"] m`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(Syslog{Key: "KEY-1234567"}.AppendLog([]byte("prefix:"), tc.log))
			if got != "prefix:"+tc.want {
				t.Errorf("\n got %s\nwant prefix:%s", got, tc.want)
			}
		})
	}
}

// TestSyslogRoundTrip parses what the writer wrote: every header field of
// the sender survives, and the key is the SEKOIA element's value.
func TestSyslogRoundTrip(t *testing.T) {
	in := &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Pri: 165, Hostname: []byte("host.example.net"), AppName: []byte("postfix/smtpd"), Procid: []byte("8710"),
		StructuredData: []byte(`[meta@1 k="v\]"]`), Msg: []byte("multi\nline \"msg\"")}
	line := Syslog{Key: `odd"key]\`}.AppendLog(nil, in)
	var out pb.Log
	syslog.Parse(&out, line, at)
	if out.Format != pb.LogFormat_RFC5424 || out.Pri != 165 || string(out.Hostname) != "host.example.net" || string(out.AppName) != "postfix/smtpd" ||
		string(out.Procid) != "8710" || string(out.Msgid) != "LOG" || !bytes.Equal(out.Msg, in.Msg) || out.TimestampNs != at.Truncate(time.Microsecond).UnixNano() {
		t.Fatalf("round trip of %q gave %+v", line, &out)
	}
	if want := `[SEKOIA@53288 intake_key="odd\"key\]\\"][meta@1 k="v\]"]`; string(out.StructuredData) != want {
		t.Fatalf("SD %s, want %s", out.StructuredData, want)
	}
}

func TestSyslogAppendFlow(t *testing.T) {
	f := &pb.Flow{Type: pb.FlowType_IPFIX, TimeReceivedNs: uint64(at.UnixNano()), Exporter: []byte{10, 0, 0, 1}, Present: 1 << uint(pb.Field_PROTO), Proto: 6}
	got := string(Syslog{Key: "KEY-1234567", Events: IANA{}}.AppendFlow(nil, f))
	want := `<14>1 2026-11-23T10:00:00.123456Z 10.0.0.1 flowgate - LOG [SEKOIA@53288 intake_key="KEY-1234567"] ` + string(IANA{}.AppendFlow(nil, f))
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}

func TestJSONAppendLog(t *testing.T) {
	l := &pb.Log{Hostname: []byte("h"), AppName: []byte("a"), Msg: []byte("the message")}
	if got := string(IANA{}.AppendLog(nil, l)); got != "the message" {
		t.Fatalf("got %q", got)
	}
}

func BenchmarkSyslogAppendLog(b *testing.B) {
	l := &pb.Log{TimeReceivedNs: uint64(at.UnixNano()), Sender: []byte{192, 0, 2, 1}, Pri: 34, AppName: []byte("sshd"), Procid: []byte("4242"),
		Msg: []byte("Accepted publickey for admin from 192.0.2.10 port 52144 ssh2")}
	enc := Syslog{Key: "AbCdEfGhIjKlMnOpQrStUvWxYz012345", Events: IANA{}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendLog(buf[:0], l)
	}
}
