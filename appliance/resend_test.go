package appliance_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
)

// TestResendWindowSetting: rsyslogd, restarted gracefully once it wrote
// down the first round, gets that round again with the default window
// (and the log says how much), and only once with resend_window: 0s.
func TestResendWindowSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		resent    int
	}{
		{"default", "", 100},
		{"off", "resend_window: 0s", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSyslogSetup(t)
			port := apptest.FreePort(t, "tcp")
			out := fmt.Sprintf(`{transport: syslog, endpoint: "localhost:%d", ca_file: %q, %s}`, s.tlsPort, s.certs.CA, tc.key)
			s.start(t, fmt.Sprintf("  - {name: Servers, protocol: tcp, port: %d, intake_key: %s, output: %s}\n", port, tlsKey, out))
			first, second := messages("before", 100), messages("after", 100)
			peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, Tag: "srv"}, first...)
			s.receiver.WaitMessages(t, len(first), 30*time.Second)
			s.receiver.Stop()
			s.receiver.Start()
			peers.Logger(t, port, peers.LoggerOptions{Format: "rfc5424", TCP: true, Tag: "srv"}, second...)
			all := append(first, second...)
			var got []peers.Received
			apptest.Eventually(60*time.Second, func() bool {
				got = s.receiver.Messages()
				return len(got) >= len(all)+tc.resent && s.proc.Metric("flowgate_shipped_events_total") == float64(len(all))
			})
			if dup := checkReceived(t, got, all, "syslog-tls", "srv", tlsKey, true); dup != tc.resent || len(got) != len(all)+tc.resent {
				t.Errorf("%d messages, %d events twice; want %d, %d twice", len(got), dup, len(all)+tc.resent, tc.resent)
			}
			log := s.proc.Stderr.String()
			resends := strings.Contains(log, "sending again")
			if want := fmt.Sprintf("events=%d ", tc.resent); tc.resent > 0 && (!resends || !strings.Contains(log, want) || !strings.Contains(log, config.MaskKey(tlsKey))) {
				t.Errorf("the log lacks the resend line with %q and the masked key:\n%s", want, tail(log, 10))
			} else if tc.resent == 0 && resends {
				t.Errorf("the log says it resends with the window off:\n%s", tail(log, 10))
			}
			if strings.Contains(log, tlsKey) {
				t.Error("the intake key is logged in full")
			}
		})
	}
}
