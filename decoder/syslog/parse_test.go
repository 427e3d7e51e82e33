package syslog

import (
	"testing"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// received is when the test messages arrived: RFC 3164 times take its year
// and zone.
var received = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type want struct {
	format                            pb.LogFormat
	pri                               uint32
	ts                                string // RFC 3339 with nanoseconds, "" for none
	host, app, procid, msgid, sd, msg string
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want want
	}{
		{"rfc5424 example 1", `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`,
			want{pb.LogFormat_RFC5424, 34, "2003-10-11T22:14:15.003Z", "mymachine.example.com", "su", "", "ID47", "", "'su root' failed for lonvick on /dev/pts/8"}},
		{"rfc5424 offset and sd", `<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] %% It's time to make the do-nuts.`,
			want{pb.LogFormat_RFC5424, 165, "2003-08-24T12:14:15.000003Z", "192.0.2.1", "myproc", "8710", "", `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`, "%% It's time to make the do-nuts."}},
		{"rfc5424 escapes in sd", `<13>1 - host app - - [a@1 k="x\"y\]z\\"] msg`,
			want{pb.LogFormat_RFC5424, 13, "", "host", "app", "", "", `[a@1 k="x\"y\]z\\"]`, "msg"}},
		{"rfc5424 no msg", `<13>1 - - - - - -`, want{pb.LogFormat_RFC5424, 13, "", "", "", "", "", "", ""}},
		{"rfc5424 multi-line msg", "<13>1 - h a - - - line one\nline two", want{pb.LogFormat_RFC5424, 13, "", "h", "a", "", "", "", "line one\nline two"}},
		{"logger rfc5424", `<13>1 2026-11-23T10:59:58.123456+01:00 host1 myapp 4242 - [timeQuality tzKnown="1" isSynced="0"] hello world`,
			want{pb.LogFormat_RFC5424, 13, "2026-11-23T09:59:58.123456Z", "host1", "myapp", "4242", "", `[timeQuality tzKnown="1" isSynced="0"]`, "hello world"}},
		{"broken rfc5424 falls back", `<13>1 notatime host app - - - msg`,
			want{pb.LogFormat_RFC3164, 13, "", "", "", "", "", "", "1 notatime host app - - - msg"}},
		{"rfc5424 unclosed sd falls back", `<13>1 - h a - - [x@1 a="b" msg`,
			want{pb.LogFormat_RFC3164, 13, "", "", "", "", "", "", `1 - h a - - [x@1 a="b" msg`}},
		{"rfc3164 example", `<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
			want{pb.LogFormat_RFC3164, 34, "2026-10-11T22:14:15Z", "mymachine", "su", "", "", "", "'su root' failed for lonvick on /dev/pts/8"}},
		{"rfc3164 pid and padded day", `<13>Nov  3 08:01:02 fw01 sshd[4242]:   Accepted publickey`,
			want{pb.LogFormat_RFC3164, 13, "2026-11-03T08:01:02Z", "fw01", "sshd", "4242", "", "", "Accepted publickey"}},
		{"rfc3164 last year", `<13>Dec 31 23:59:59 h app: x`,
			want{pb.LogFormat_RFC3164, 13, "2025-12-31T23:59:59Z", "h", "app", "", "", "", "x"}},
		{"rfc3164 fractions and year", `<187>Nov 23 2026 09:15:00.250 sw-core-1 %LINK-3-UPDOWN: Interface Gi1/0/1, changed state to down`,
			want{pb.LogFormat_RFC3164, 187, "2026-11-23T09:15:00.25Z", "sw-core-1", "%LINK-3-UPDOWN", "", "", "", "Interface Gi1/0/1, changed state to down"}},
		{"rfc3164 no hostname", `<13>Nov 23 09:15:00 sshd[1]: hi`,
			want{pb.LogFormat_RFC3164, 13, "2026-11-23T09:15:00Z", "", "sshd", "1", "", "", "hi"}},
		{"rfc3164 no tag keeps every word", `<13>Nov 23 09:15:00 host message text here`,
			want{pb.LogFormat_RFC3164, 13, "2026-11-23T09:15:00Z", "host", "", "", "", "", "message text here"}},
		{"rfc3164 rfc3339 time", `<14>2026-11-23T09:15:00+00:00 host app[7]: ok`,
			want{pb.LogFormat_RFC3164, 14, "2026-11-23T09:15:00Z", "host", "app", "7", "", "", "ok"}},
		{"pri only, key-value body", `<189>date=2026-11-23 time=10:00:00 devname="fw" type="traffic"`,
			want{pb.LogFormat_RFC3164, 189, "", "", "", "", "", "", `date=2026-11-23 time=10:00:00 devname="fw" type="traffic"`}},
		{"pri only with tag", `<13>app: x`, want{pb.LogFormat_RFC3164, 13, "", "", "app", "", "", "", "x"}},
		{"no pri, bsd time", `Nov 23 09:15:00 host app: x`, want{pb.LogFormat_RFC3164, 13, "2026-11-23T09:15:00Z", "host", "app", "", "", "", "x"}},
		{"nothing recognisable", `  just some text: with colon`, want{pb.LogFormat_UNPARSED, 13, "", "", "", "", "", "", "  just some text: with colon"}},
		{"bad pri", `<999>1 - - - - - - x`, want{pb.LogFormat_UNPARSED, 13, "", "", "", "", "", "", "<999>1 - - - - - - x"}},
		{"pri 191", `<191>x`, want{pb.LogFormat_RFC3164, 191, "", "", "", "", "", "", "x"}},
		{"trailing line end dropped, leading spaces of MSG too", "<13>1 - h a - - -   m\r\n", want{pb.LogFormat_RFC5424, 13, "", "h", "a", "", "", "", "m"}},
		{"empty", ``, want{pb.LogFormat_UNPARSED, 13, "", "", "", "", "", "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l pb.Log
			Parse(&l, []byte(tc.in), received)
			ts := ""
			if l.TimestampNs != 0 {
				ts = time.Unix(0, l.TimestampNs).UTC().Format(time.RFC3339Nano)
			}
			got := want{l.Format, l.Pri, ts, string(l.Hostname), string(l.AppName), string(l.Procid), string(l.Msgid), string(l.StructuredData), string(l.Msg)}
			if got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParse checks that parsing never panics and that every field it
// returns is a piece of the frame.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3"] msg`,
		`<34>Oct 11 22:14:15 mymachine su: 'su root' failed`,
		`<187>Nov 23 2026 09:15:00.250 sw %LINK-3-UPDOWN: x`,
		`<13>1 - h a - - [x@1 a="b\"]" c="d"] m`,
		`<14>2026-11-23T09:15:00+00:00 host app[7]: ok`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var l pb.Log
		Parse(&l, frame, received)
		if l.Pri > 191 {
			t.Fatalf("pri %d", l.Pri)
		}
		for _, field := range [][]byte{l.Hostname, l.AppName, l.Procid, l.Msgid, l.StructuredData, l.Msg} {
			if len(field) > len(frame) {
				t.Fatalf("field longer than the frame")
			}
		}
		if l.Format == pb.LogFormat_UNPARSED && string(l.Msg) != string(TrimLineEnd(frame)) {
			t.Fatalf("unparsed frame not kept whole: %q", l.Msg)
		}
	})
}

var benchLines = [][]byte{
	[]byte(`<34>1 2026-11-23T10:00:00.123456Z fw01.example.net sshd 4242 - - Accepted publickey for admin from 192.0.2.10 port 52144 ssh2`),
	[]byte(`<165>1 2026-11-23T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry`),
	[]byte(`<13>Nov 23 09:15:00 fw01 sshd[4242]: Accepted publickey for admin from 192.0.2.10 port 52144 ssh2`),
	[]byte(`<189>date=2026-11-23 time=10:00:00 devname="FGT60E" devid="FGT60E0000000001" logid="0000000013" type="traffic" subtype="forward" level="notice" srcip=192.0.2.10 srcport=52144 dstip=198.51.100.7 dstport=443 action="accept"`),
}

func BenchmarkParse(b *testing.B) {
	for _, line := range benchLines {
		b.Run(string(line[1:4]), func(b *testing.B) {
			var l pb.Log
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(&l, line, received)
			}
		})
	}
}
