package peers

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// LoggerOptions say how logger(1) sends.
type LoggerOptions struct {
	// Format is "rfc5424" or "rfc3164".
	Format string
	// TCP sends over one TCP connection; otherwise UDP datagrams.
	TCP bool
	// OctetCount frames TCP messages with RFC 6587 octet counting instead
	// of a newline.
	OctetCount bool
	// Tag is the APP-NAME (TAG) of the messages.
	Tag string
}

// Logger sends each of msgs as one message to 127.0.0.1:port with
// util-linux logger, which reads them from its standard input, and returns
// once it has exited.
func Logger(t testing.TB, port int, opt LoggerOptions, msgs ...string) {
	t.Helper()
	Require(t, "logger")
	args := []string{"--" + opt.Format, "-n", "127.0.0.1", "-P", strconv.Itoa(port), "-t", opt.Tag}
	if opt.TCP {
		args = append(args, "-T")
		if opt.OctetCount {
			args = append(args, "--octet-count")
		}
	} else {
		args = append(args, "-d")
	}
	cmd := exec.Command("logger", args...)
	cmd.Stdin = strings.NewReader(strings.Join(msgs, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("logger %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
}
