package appliance_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
)

// TestFileOutputEscapesControlBytes: UDP syslog carries anything; the file
// output and stdout write each event on one line, control bytes escaped
// as rsyslog does, other events (backslashes and tabs included) unchanged.
func TestFileOutputEscapesControlBytes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.log")
	filePort, stdoutPort := apptest.FreePort(t, "udp"), apptest.FreePort(t, "udp")
	a := newApp(t, fmt.Sprintf(`intakes:
  - {name: ToFile, protocol: udp, port: %d, intake_key: %s, output: {transport: file, path: %q}}
  - {name: ToStdout, protocol: udp, port: %d, intake_key: %s, output: {transport: file, path: "-"}}
`, filePort, tlsKey, path, stdoutPort, relpKey))

	// The datagrams sent and the lines they must become: MSG after an
	// RFC 5424 header, the whole datagram when there is none.
	const header = "<13>1 2026-12-04T10:00:00Z device app - - - "
	sent := map[string]string{
		header + "first\nsecond\r\nthird\x00fourth \\ C:\\path #012 end": `first#012second#015#012third#000fourth \ C:\path #012 end`,
		header + "esc\x1b[31mred\x7f bell\x07":                           "esc#033[31mred\x7f bell#007",
		header + "plain \\ backslash,\ttab, \"quotes\", é":               "plain \\ backslash,\ttab, \"quotes\", é",
		"no header\nat all": "no header#012at all",
	}
	var want []string
	for datagram, line := range sent {
		want = append(want, line)
		for _, port := range []int{filePort, stdoutPort} {
			c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte(datagram)); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
	}
	slices.Sort(want)

	lines := func(s string) []string {
		l := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		slices.Sort(l)
		return l
	}
	var fromFile, fromStdout []string
	if !apptest.Eventually(30*time.Second, func() bool {
		data, _ := os.ReadFile(path)
		fromFile, fromStdout = lines(string(data)), lines(a.Stdout.String())
		return len(fromFile) >= len(want) && len(fromStdout) >= len(want)
	}) {
		t.Fatalf("in 30s, %d lines in the file and %d on stdout, want %d", len(fromFile), len(fromStdout), len(want))
	}
	for name, got := range map[string][]string{"file": fromFile, "stdout": fromStdout} {
		if !slices.Equal(got, want) {
			t.Errorf("the %s holds\n%q\nwant\n%q", name, got, want)
		}
	}
}
