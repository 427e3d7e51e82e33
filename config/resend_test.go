package config

import (
	"strings"
	"testing"
)

func TestResendWindow(t *testing.T) {
	c, _, err := load(t, `
intakes:
  - {name: a, protocol: tcp, port: 514, intake_key: KEY, output: {transport: syslog, resend_window: 10s}}
  - {name: b, protocol: tcp, port: 515, intake_key: KEY, output: {transport: syslog, resend_window: 0s}}
  - {name: c, protocol: tcp, port: 516, intake_key: KEY}
output: {transport: syslog, endpoint: "h:6514"}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"10s", "0s", "unset"} {
		got := "unset"
		if w := c.Intakes[i].Output.ResendWindow; w != nil {
			got = w.String()
		}
		if got != want {
			t.Errorf("intake %s: resend_window %s, want %s", c.Intakes[i].Name, got, want)
		}
	}
	for _, tc := range []struct{ output, want string }{
		{"{transport: syslog, resend_window: -1s}", "output.resend_window -1s is negative"},
		{"{transport: relp, resend_window: 1m}", "output.resend_window applies to transport syslog"},
	} {
		_, _, err := load(t, "intakes:\n  - {name: a, protocol: tcp, port: 514, intake_key: KEY}\noutput: "+tc.output+"\n", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("output %s: error %v, want one containing %q", tc.output, err, tc.want)
		}
	}
}
