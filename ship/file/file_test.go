package file

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/flowgate/flowgate/ship"
)

// flowEvent and logEvent are events as the encoders write them: a flow's
// JSON object, a syslog message's MSG.
const (
	flowEvent = `{"sourceIPv4Address":"10.0.0.2","destinationIPv4Address":"192.0.2.245","sourceTransportPort":41970,"destinationTransportPort":8080,"protocolIdentifier":17,"ipVersion":4,"ipClassOfService":0,"tcpControlBits":0,"octetDeltaCount":2724,"packetDeltaCount":4,"ingressInterface":0,"egressInterface":0,"flowStartSeconds":1795428000,"flowStartMilliseconds":1795428000005,"flowEndSeconds":1795428000,"flowEndMilliseconds":1795428000119,"flowStartSysUpTime":4261782234,"flowEndSysUpTime":4261782348,"flowDirection":0,"flowEndReason":1,"samplingPacketInterval":1,"exporterIPv4Address":"127.0.0.1","observationDomainId":0,"collectionTimeMilliseconds":1795461185383,"flowType":"IPFIX"}`
	logEvent  = `postfix/smtpd[4242]: connect from mail.example.net[192.0.2.7] user=alice action="login" path=C:\Users\alice result=ok`
)

func benchmarkSend(b *testing.B, event string) {
	events := make([][]byte, 1000)
	for i := range events {
		events[i] = []byte(event)
	}
	batch := ship.NewBatch(events...)
	tr := NewWriter(io.Discard, "discard")
	b.SetBytes(int64(batch.Bytes()))
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSendFlows(b *testing.B) { benchmarkSend(b, flowEvent) }
func BenchmarkSendLogs(b *testing.B)  { benchmarkSend(b, logEvent) }

func TestAppendLine(t *testing.T) {
	for _, tc := range []struct{ event, line string }{
		{"", ""},
		{logEvent, logEvent},
		{flowEvent, flowEvent},
		{`{"ifName":"a \"b\" \\ c\u0000\n"}`, `{"ifName":"a \"b\" \\ c\u0000\n"}`},
		{"first\nsecond\r\nthird", "first#012second#015#012third"},
		{"nul\x00 bell\x07 esc\x1b[31m us\x1f del\x7f tab\t", "nul#000 bell#007 esc#033[31m us#037 del\x7f tab\t"},
		{`C:\Users\alice #012 is text`, `C:\Users\alice #012 is text`},
		{"é € 漢字 \x80\x9f\xff bad UTF-8 is kept", "é € 漢字 \x80\x9f\xff bad UTF-8 is kept"},
		{"\n", "#012"},
	} {
		if got := string(AppendLine([]byte("x"), []byte(tc.event))); got != "x"+tc.line {
			t.Errorf("AppendLine(%q) = %q, want %q", tc.event, got[1:], tc.line)
		}
	}
}

// TestAppendLineEveryByte puts each byte value at each place of events
// long enough for a word and a tail, and compares with escaping byte by
// byte.
func TestAppendLineEveryByte(t *testing.T) {
	want := func(event []byte) []byte {
		var out []byte
		for _, c := range event {
			if c < ' ' && c != '\t' {
				out = append(out, fmt.Sprintf("#%03o", c)...)
			} else {
				out = append(out, c)
			}
		}
		return out
	}
	for n := 1; n <= 40; n++ {
		for at := range n {
			for c := range 256 {
				event := bytes.Repeat([]byte{'a'}, n)
				event[at] = byte(c)
				event[n-1] ^= '\n' ^ 'a' // a second one to escape, after the first
				if got := AppendLine(nil, event); !bytes.Equal(got, want(event)) {
					t.Fatalf("AppendLine(%q) = %q, want %q", event, got, want(event))
				}
			}
		}
	}
}

// TestSendOneEventALine: each event is one line, events without control
// bytes as they are, and a batch costs no allocation once the line buffer
// has grown.
func TestSendOneEventALine(t *testing.T) {
	events := []string{logEvent, "multi\nline\r\nevent\x00", flowEvent, `back\slash`}
	batch := ship.NewBatch([]byte(events[0]), []byte(events[1]), []byte(events[2]), []byte(events[3]))
	var out bytes.Buffer
	tr := NewWriter(&out, "buffer")
	if err := tr.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := logEvent + "\nmulti#012line#015#012event#000\n" + flowEvent + "\n" + `back\slash` + "\n"
	if out.String() != want {
		t.Fatalf("wrote %q, want %q", out.String(), want)
	}
	tr = NewWriter(io.Discard, "discard")
	if n := testing.AllocsPerRun(10, func() { _ = tr.Send(context.Background(), batch) }); n != 0 {
		t.Errorf("%v allocations a batch", n)
	}
}
