package config

import (
	"net/netip"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// flowFile is an intakes.yaml whose first intake is completed by extra
// (indented as the intake's keys).
func flowFile(protocol, extra string) string {
	return `intakes:
  - name: Routers
    protocol: ` + protocol + `
    port: 2055
    intake_key: Key0123456789
` + extra + `output:
  transport: file
  path: "-"
`
}

func TestExporters(t *testing.T) {
	c, err := Parse([]byte(flowFile("netflow", `    scale_sampling: false
    receive_buffer: 64m
    sockets: 4
    workers: 3
    exporters:
      - address: 192.0.2.1
        name: edge-paris-1
        sampling_rate: 1000
        interfaces: {1: ge-0/0/1, 2: ge-0/0/2}
      - address: "2001:db8::7"
        sampling_rate: 64
        sampling_override: true
      - address: ::ffff:192.0.2.9
`)), "test", "/", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	in := c.Intakes[0]
	if in.Flow.Scaling() || in.UDP.ReceiveBuffer != 64<<20 || in.UDP.Sockets != 4 || in.Flow.Workers != 3 || len(in.Flow.Exporters) != 3 {
		t.Fatalf("intake %+v", in)
	}
	e := in.Flow.Exporters[0]
	if e.Addr != netip.MustParseAddr("192.0.2.1") || e.Name != "edge-paris-1" || e.SamplingRate != 1000 || e.SamplingOverride ||
		e.Interfaces[1] != "ge-0/0/1" || e.Interfaces[2] != "ge-0/0/2" || e.Line != 11 {
		t.Fatalf("first exporter %+v", e)
	}
	if e := in.Flow.Exporters[1]; !e.SamplingOverride || e.SamplingRate != 64 || e.Line != 15 {
		t.Fatalf("second exporter %+v", e)
	}
	if e := in.Flow.Exporters[2]; e.Addr != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("a v4-mapped address is the IPv4 exporter: %v", e.Addr)
	}

	c, err = Parse([]byte(flowFile("netflow", "")), "test", "/", noEnv)
	if err != nil || !c.Intakes[0].Flow.Scaling() {
		t.Fatalf("scaling is on by default: %v", err)
	}
}

func TestExportersRefused(t *testing.T) {
	for _, tc := range []struct {
		name, protocol, extra, want string
	}{
		{"exporters on a tcp intake", "tcp", "    exporters:\n      - address: 192.0.2.1\n",
			`line 2: intake "Routers": exporters applies to netflow and sflow intakes only`},
		{"workers on a udp intake", "udp", "    workers: 2\n", `line 2: intake "Routers": workers applies to netflow and sflow intakes only`},
		{"scale_sampling on a tls intake", "tls", "    scale_sampling: true\n", "scale_sampling applies to netflow and sflow intakes only"},
		{"receive_buffer on a tcp intake", "tcp", "    receive_buffer: 8m\n", "receive_buffer applies to udp, netflow and sflow intakes only"},
		{"receive buffer too large", "netflow", "    receive_buffer: 4g\n", "receive_buffer 4g is above the most a socket takes"},
		{"bad receive buffer", "netflow", "    receive_buffer: lots\n", `line 6: intake "Routers": receive_buffer: size "lots"`},
		{"negative sockets", "sflow", "    sockets: -1\n", "sockets -1 is not between 1 and 256"},
		{"too many workers", "netflow", "    workers: 5000\n", "workers 5000 is not between 1 and 1024"},
		{"missing address", "netflow", "    exporters:\n      - name: edge\n", `line 7: intake "Routers": exporter #1: address is missing`},
		{"bad address", "netflow", "    exporters:\n      - address: 192.0.2.0/24\n", `line 7: intake "Routers": exporter 192.0.2.0/24: address is not an IP address`},
		{"duplicate address", "netflow", "    exporters:\n      - address: 192.0.2.1\n      - address: 192.0.2.1\n",
			`line 8: intake "Routers": exporter 192.0.2.1: address already listed at line 7`},
		{"override without a rate", "netflow", "    exporters:\n      - address: 192.0.2.1\n        sampling_override: true\n",
			"exporter 192.0.2.1: sampling_override needs a sampling_rate"},
		{"negative rate", "netflow", "    exporters:\n      - address: 192.0.2.1\n        sampling_rate: -5\n", "line 8"},
		{"empty interface name", "netflow", "    exporters:\n      - address: 192.0.2.1\n        interfaces: {3: \"\"}\n",
			"exporter 192.0.2.1: interface 3: the name must have 1 to 256 bytes"},
		{"interface index not a number", "netflow", "    exporters:\n      - address: 192.0.2.1\n        interfaces: {ge-0: x}\n", "line 8"},
		{"unknown exporter key", "netflow", "    exporters:\n      - address: 192.0.2.1\n        sampling: 5\n", `line 8: unknown key "sampling" in exporter 192.0.2.1 of intake "Routers"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(flowFile(tc.protocol, tc.extra)), "test", "/", noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
}
