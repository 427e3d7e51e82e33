package pipeline

import (
	"testing"

	"github.com/flowgate/flowgate/config"
)

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		out        config.Output
		host, port string
		fails      bool
	}{
		{out: config.Output{Transport: config.TransportHTTPS, Endpoint: "https://intake.sekoia.io"}, host: "intake.sekoia.io", port: "443"},
		{out: config.Output{Transport: config.TransportHTTPS, Endpoint: "https://127.0.0.1:8443/api"}, host: "127.0.0.1", port: "8443"},
		{out: config.Output{Transport: config.TransportSyslog, Endpoint: "intake.sekoia.io:10514"}, host: "intake.sekoia.io", port: "10514"},
		{out: config.Output{Transport: config.TransportRELP, Endpoint: "[::1]:11514"}, host: "::1", port: "11514"},
		{out: config.Output{Transport: config.TransportHTTP, URL: "https://logs-01.loggly.com/bulk/{key}/tag/x/"}, host: "logs-01.loggly.com", port: "443"},
		{out: config.Output{Transport: config.TransportHTTP, URL: "https://splunk:8088/services/collector/event"}, host: "splunk", port: "8088"},
		{out: config.Output{Transport: config.TransportSyslog, Endpoint: "no-port"}, fails: true},
		{out: config.Output{Transport: config.TransportFile, Path: "/tmp/x"}, fails: true},
	} {
		host, port, err := HostPort(&tc.out)
		if (err != nil) != tc.fails || host != tc.host || port != tc.port {
			t.Errorf("%+v: %q %q %v", tc.out, host, port, err)
		}
	}
}

// Intakes with the same output and key share a transport; another key,
// CA file or client key is another transport; file outputs are one per
// file, whatever the key.
func TestOutputID(t *testing.T) {
	https := &config.Output{Transport: config.TransportHTTPS, Endpoint: "https://intake.sekoia.io", CAFile: "ca.pem"}
	in := func(key string, o *config.Output) config.Intake { return config.Intake{IntakeKey: key, Output: o} }
	other := *https
	other.KeyFile = "client.key"
	file := &config.Output{Transport: config.TransportFile, Path: "/var/log/events"}
	gzip := false
	loggly := &config.Output{Transport: config.TransportHTTP, URL: "https://logs-01.loggly.com/bulk/{key}/tag/a/", Gzip: &gzip,
		Headers: map[string]string{"Content-Type": "text/plain", "X-A": "1"}}
	sameLoggly := *loggly
	sameLoggly.Headers = map[string]string{"X-A": "1", "Content-Type": "text/plain"}
	otherTag := *loggly
	otherTag.URL = "https://logs-01.loggly.com/bulk/{key}/tag/b/"
	switch {
	case OutputID(in("A", https)) != OutputID(in("A", https)):
		t.Error("one output and key: two transports")
	case OutputID(in("A", https)) == OutputID(in("B", https)):
		t.Error("two keys: one transport")
	case OutputID(in("A", https)) == OutputID(in("A", &other)):
		t.Error("two client keys: one transport")
	case OutputID(in("A", loggly)) != OutputID(in("A", &sameLoggly)):
		t.Error("one http output and key: two transports")
	case OutputID(in("A", loggly)) == OutputID(in("A", &otherTag)):
		t.Error("two http urls: one transport")
	case OutputID(in("A", file)) != OutputID(in("B", file)):
		t.Error("one file: two transports")
	}
}
