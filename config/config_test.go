package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns an Env reading from pairs.
func env(pairs ...string) Env {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// oldForwarderFile is an intakes.yaml as the rsyslog forwarder's users have
// it, with every key it knew and their keys filled in (sekoiaExample is
// the file as Sekoia's documentation gives it, with placeholders).
const oldForwarderFile = `---
intakes:
- name: Techno1
  protocol: tcp
  port: 20516
  intake_key: bf0JgFm8uVvBcgzmsw0CIfIblRuBLQ1w
- name: Techno2
  protocol: udp
  port: 20517
  intake_key: Xa91kPqLmN02hTzRvW7yEeUoIcBdFg3s
  debug: true
  queue_size: 100000
- name: Techno3
  protocol: tls
  port: 20518
  intake_key: q7RtYuIoPaSdFgHjKlZxCvBnM1234567
  tls_key_name: server
  tls_cert_name: server
  tls_ca_name: ca
- name: Monitoring
  stats: true
  intake_key: StatsKey0123456789abcdefghijklmn
`

// sekoiaExample is oldForwarderFile with the placeholders of Sekoia's
// documentation in place of the keys.
var sekoiaExample = strings.NewReplacer(
	"bf0JgFm8uVvBcgzmsw0CIfIblRuBLQ1w", "INTAKE_KEY_FOR_TECHNO_1",
	"Xa91kPqLmN02hTzRvW7yEeUoIcBdFg3s", "INTAKE_KEY_FOR_TECHNO_2",
	"q7RtYuIoPaSdFgHjKlZxCvBnM1234567", "INTAKE_KEY_FOR_TECHNO_3",
	"StatsKey0123456789abcdefghijklmn", "INTAKE_KEY_FOR_STATS",
).Replace(oldForwarderFile)

// parseOld parses oldForwarderFile with the TLS files of its tls intake
// in a certs folder, as the container mounts ./certs at /certs: the test
// only adds where that folder is.
func parseOld(t *testing.T, e Env) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"server.key", "server.crt", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return Parse([]byte(oldForwarderFile+"certs_dir: "+dir+"\n"), "intakes.yaml", "/etc/flowgate", e)
}

func TestOldForwarderFileLoadsUnchanged(t *testing.T) {
	c, err := parseOld(t, env())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Intakes) != 4 {
		t.Fatalf("%d intakes", len(c.Intakes))
	}
	in := c.Intakes[2]
	if in.Name != "Techno3" || in.Protocol != "tls" || in.Port != 20518 || in.TLS.CAName != "ca" || in.TLS.KeyName != "server" || in.Line != 13 {
		t.Fatalf("tls intake: %+v", in)
	}
	if !c.Intakes[1].Debug || c.Intakes[1].QueueSize != 100000 || !c.Intakes[3].Stats || c.Intakes[3].Report.Interval != time.Minute {
		t.Fatalf("intakes: %+v", c.Intakes)
	}
	if c.HTTP.StallAfter != 2*time.Minute {
		t.Fatalf("stall_after by default: %s", c.HTTP.StallAfter)
	}
	// As with the old forwarder, logs go over syslog-TLS to FRA1.
	if o := c.Intakes[0].Output; o.Transport != TransportSyslog || o.Endpoint != "intake.sekoia.io:10514" {
		t.Fatalf("output: %+v", o)
	}
	if c.Buffer.Dir != defaultDataDir || c.Buffer.DiskSpace != defaultDiskSpace || c.HTTP.Listen != defaultHTTPListen || c.HTTP.PProf {
		t.Fatalf("defaults: %+v %+v", c.Buffer, c.HTTP)
	}
}

func TestEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      Env
		endpoint string
		disk     Size
		memory   int
	}{
		{"defaults", env(), "intake.sekoia.io:10514", defaultDiskSpace, defaultMemoryMessages},
		{"region", env("REGION", "fra2"), "intake.fra2.sekoia.io:10514", defaultDiskSpace, defaultMemoryMessages},
		{"other", env("REGION", "OTHER", "ENDPOINT", "https://intake.example.net"), "intake.example.net:10514", defaultDiskSpace, defaultMemoryMessages},
		{"endpoint alone", env("ENDPOINT", "https://intake.example.net/base"), "intake.example.net:10514", defaultDiskSpace, defaultMemoryMessages},
		{"sizes", env("DISK_SPACE", "180g", "MEMORY_MESSAGES", "2000000"), "intake.sekoia.io:10514", 180 << 30, 2_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseOld(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if e := c.Intakes[0].Output.Endpoint; e != tc.endpoint || c.Buffer.DiskSpace != tc.disk || c.Buffer.MemoryMessages != tc.memory {
				t.Fatalf("endpoint %q disk %v memory %d", e, c.Buffer.DiskSpace, c.Buffer.MemoryMessages)
			}
		})
	}
}

func TestFileKeysAndTheirPrecedence(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := `intakes:
  - {name: Routers, protocol: netflow, port: 2055, intake_key: ABCDEFGH12345678}
output:
  transport: https
  endpoint: https://127.0.0.1:8443
  ca_file: ca.pem
buffer:
  dir: data
  disk_space: 2g
  memory_messages: 5000
http:
  listen: 127.0.0.1:9999
  pprof: true
`
	c, err := Parse([]byte(file), "intakes.yaml", dir, env("REGION", "USA1", "DISK_SPACE", "3g"))
	if err != nil {
		t.Fatal(err)
	}
	// The file's endpoint wins over REGION; DISK_SPACE wins over the file.
	o := c.Intakes[0].Output
	if o.Endpoint != "https://127.0.0.1:8443" || c.Buffer.DiskSpace != 3<<30 || c.Buffer.MemoryMessages != 5000 {
		t.Fatalf("%+v %+v", o, c.Buffer)
	}
	if o.CAFile != filepath.Join(dir, "ca.pem") || c.Buffer.Dir != filepath.Join(dir, "data") || c.HTTP.Listen != "127.0.0.1:9999" || !c.HTTP.PProf {
		t.Fatalf("paths: %+v %+v %+v", o, c.Buffer, c.HTTP)
	}
}

func TestRefusals(t *testing.T) {
	const ok = "ABCDEFGH12345678"
	intake := func(fields string) string { return "intakes:\n  - " + fields + "\n" }
	for _, tc := range []struct {
		name string
		file string
		env  Env
		want string
	}{
		{"empty file", "", nil, "the file is empty"},
		{"no intakes", "intakes: []\n", nil, "no intakes"},
		{"comments only", "# intakes: []\n", nil, "the file is empty"},
		{"not yaml", "intakes: [\n", nil, "line 2: did not find expected node content"},
		{"not a mapping", "- a\n", nil, "line 1: expected keys and values (intakes: and its list), not a list"},
		{"unknown key", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + ", colour: red}"), nil, `line 2: unknown key "colour" in intake "A"`},
		{"unknown top-level key", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "outpt: {}\n", nil, `line 3: unknown key "outpt" (did you mean "output"?)`},
		{"key twice", "intakes:\n  - name: A\n    protocol: udp\n    port: 514\n    port: 515\n", nil, `line 5: key "port" given twice in intake "A" (first at line 4)`},
		{"missing key", intake("{name: A, protocol: netflow, port: 2055}"), nil, `line 2: intake "A": intake_key is missing`},
		{"malformed key", intake(`{name: A, protocol: netflow, port: 2055, intake_key: "has space in it"}`), nil, "intake_key has *********it is malformed"},
		{"short key", intake("{name: A, protocol: netflow, port: 2055, intake_key: abc}"), nil, "is malformed"},
		{"missing name", intake("{protocol: netflow, port: 2055, intake_key: " + ok + "}"), nil, "intake #1: name is missing"},
		{"unknown protocol", intake("{name: A, protocol: smtp, port: 25, intake_key: " + ok + "}"), nil, `unknown protocol "smtp"`},
		{"missing protocol", intake("{name: A, port: 25, intake_key: " + ok + "}"), nil, "protocol is missing"},
		{"bad port", intake("{name: A, protocol: udp, port: 70000, intake_key: " + ok + "}"), nil, "port 70000 is not between 1 and 65535"},
		{"port as text", intake("{name: A, protocol: udp, port: many, intake_key: " + ok + "}"), nil, `line 2: intake "A": port: expected a whole number, not "many"`},
		{"intakes not a list", "intakes: 5\n", nil, `line 1: intakes: expected a list (lines starting with -), not "5"`},
		{"duplicate name", "intakes:\n  - {name: A, protocol: udp, port: 514, intake_key: " + ok + "}\n  - {name: A, protocol: tcp, port: 601, intake_key: " + ok + "}\n", nil, `line 3: intake "A": name already used by the intake at line 2`},
		{"duplicate udp port", "intakes:\n  - {name: A, protocol: udp, port: 514, intake_key: " + ok + "}\n  - {name: B, protocol: netflow, port: 514, intake_key: " + ok + "}\n", nil, "UDP port 514 already used by the intake at line 2"},
		{"duplicate tcp port", "intakes:\n  - {name: A, protocol: tcp, port: 601, intake_key: " + ok + "}\n  - {name: B, protocol: tls, port: 601, intake_key: " + ok + "}\n", nil, "TCP port 601 already used"},
		{"stats with a port", intake("{name: S, stats: true, port: 1, intake_key: " + ok + "}"), nil, "a stats intake takes no protocol or port"},
		{"stats interval too short", intake("{name: S, stats: true, interval: 10ms, intake_key: " + ok + "}"), nil, "interval 10ms is below the minimum of 1s"},
		{"interval on a flow intake", intake("{name: A, protocol: netflow, port: 2055, interval: 5s, intake_key: " + ok + "}"), nil, "interval applies to stats intakes only"},
		{"interval not a duration", intake("{name: S, stats: true, interval: often, intake_key: " + ok + "}"), nil, `line 2: intake "S": interval: expected a duration such as 30s, 5m or 1h, not "often"`},
		{"stall_after too short", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "http: {stall_after: 10ms}\n", nil, "http.stall_after 10ms is below the minimum of 1s"},
		{"unknown region", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + "}"), env("REGION", "MARS1"), `REGION "MARS1" is unknown`},
		{"other without endpoint", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + "}"), env("REGION", "OTHER"), "REGION=OTHER needs ENDPOINT"},
		{"endpoint with a named region", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + "}"), env("REGION", "FRA1", "ENDPOINT", "https://x"), "set REGION=OTHER to use ENDPOINT"},
		{"plain http endpoint", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "output: {endpoint: 'http://intake.example.net'}\n", nil, "expected an https:// URL"},
		{"unknown transport", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "output: {transport: kafka}\n", nil, `unknown transport "kafka"`},
		{"file without path", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "output: {transport: file}\n", nil, "output.path is missing"},
		{"missing ca file", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "output: {ca_file: /nonexistent/ca.pem}\n", nil, "output.ca_file"},
		{"bad disk space", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + "}"), env("DISK_SPACE", "lots"), `DISK_SPACE: size "lots"`},
		{"tiny disk space", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "buffer: {disk_space: 1m}\n", nil, "below the minimum"},
		{"size not a size", intake("{name: A, protocol: netflow, port: 2055, intake_key: "+ok+"}") + "buffer: {disk_space: 1x}\n", nil, `line 3: buffer: disk_space: size "1x": expected a positive number with an optional k, m, g or t suffix`},
		{"bad memory", intake("{name: A, protocol: netflow, port: 2055, intake_key: " + ok + "}"), env("MEMORY_MESSAGES", "-4"), "MEMORY_MESSAGES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env
			if e == nil {
				e = env()
			}
			_, err := Parse([]byte(tc.file), "intakes.yaml", t.TempDir(), e)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.file)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "intakes.yaml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestErrorsNeverShowAWholeKey(t *testing.T) {
	key := "Secret key with spaces 0123456789"
	_, err := Parse([]byte("intakes:\n  - {name: A, protocol: netflow, port: 2055, intake_key: '"+key+"'}\n"), "f", "/", env())
	if err == nil || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "Secret") {
		t.Fatalf("error shows the key: %v", err)
	}
}

func TestMaskKey(t *testing.T) {
	for key, want := range map[string]string{
		"":                                 "",
		"short":                            "*****",
		"ABCDEFGHIJKL":                     "ABCD******KL",
		"bf0JgFm8uVvBcgzmsw0CIfIblRuBLQ1w": "bf0J**************************1w",
	} {
		if got := MaskKey(key); got != want {
			t.Errorf("MaskKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestSizes(t *testing.T) {
	for text, want := range map[string]Size{"180g": 180 << 30, "512M": 512 << 20, "64k": 64 << 10, "1t": 1 << 40, "1000": 1000, " 2gb ": 2 << 30} {
		got, err := ParseSize(text)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", text, got, err, want)
		}
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("%v does not read back: %v %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "g", "-1g", "1x", "99999999999t"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestEmbeddedDefaultRunsOffline(t *testing.T) {
	c, err := Default(env("REGION", "MARS1"))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Intakes[0].Output; o.Transport != TransportFile || o.Path != "-" || len(c.Intakes) != 2 || c.Intakes[0].Kind != KindNetFlow || c.Intakes[1].Kind != KindSFlow {
		t.Fatalf("%+v", c)
	}
}

// A syntax error is said on its own line, with the line and a caret
// under where the parser stopped.
func TestSyntaxErrorsAtTheirLine(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"indented too little", "intakes:\n  - name: Firewall\n    protocol: tcp\n    port: 20516\n   intake_key: bf0JgFm8uVvBcgzmsw0CIfIblRuBLQ1w\n",
			"intakes.yaml: line 5: did not find expected '-' indicator (while parsing a block collection started at line 2); check this line's indentation against the lines above it\n" +
				"  5 |    intake_key: bf0J**************************1w\n" +
				"    |    ^"},
		{"tab", "intakes:\n  - name: A\n\tprotocol: tcp\n",
			"intakes.yaml: line 3: found a tab character that violates indentation (while scanning a plain scalar started at line 2)\n" +
				"  3 | \tprotocol: tcp\n" +
				"    | ^"},
		{"colon in a value", "intakes:\n  - name: a: b\n",
			"intakes.yaml: line 2: mapping values are not allowed in this context; a value holding \": \" needs quotes\n" +
				"  2 |   - name: a: b\n" +
				"    |            ^"},
		{"key on the line", "intakes:\n  - {name: A, intake_key: ABCDEFGH12345678, port: [1}\n",
			"intakes.yaml: line 2: did not find expected ',' or ']'\n" +
				"  2 |   - {name: A, intake_key: ABCD**********78, port: [1}\n" +
				"    |                                                     ^"},
		{"unclosed quote", "intakes:\n  - name: \"Fire\n    port: 1\n",
			"intakes.yaml: line 4: found unexpected end of stream (while scanning a quoted scalar started at line 2)\n" +
				"  2 |   - name: \"Fire\n" +
				"    |           ^"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "intakes.yaml", t.TempDir(), env())
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// Unknown keys are named with their line and place in the file's words,
// with the valid key they are closest to, all of them at once.
func TestUnknownKeysWithTheKeyMeant(t *testing.T) {
	file := `intakes:
  - name: Firewall
    protocol: tcp
    port: 20516
    intake_key: ABCDEFGH12345678
    debug: false
    queue_sise: 100000
    output: {transport: https, endpont: "https://intake.example.net"}
  - name: Routers
    protocol: netflow
    port: 2055
    intake_key: ABCDEFGH12345678
    exporters:
      - {address: 10.0.0.1, interfacs: {1: wan}}
bufer: {dir: data}
http: {Listen: "127.0.0.1:9740"}
shutdown: {timeout_seconds: 30}
`
	want := `intakes.yaml: line 7: unknown key "queue_sise" in intake "Firewall" (did you mean "queue_size"?)
line 8: unknown key "endpont" in output of intake "Firewall" (did you mean "endpoint"?)
line 14: unknown key "interfacs" in exporter 10.0.0.1 of intake "Routers" (did you mean "interfaces"?)
line 15: unknown key "bufer" (did you mean "buffer"?)
line 16: unknown key "Listen" in http (did you mean "listen"?)
line 17: unknown key "timeout_seconds" in shutdown`
	_, err := Parse([]byte(file), "intakes.yaml", t.TempDir(), env())
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

// Value errors name the key and what it takes, never a Go type.
func TestValueErrorsSayWhatTheKeyTakes(t *testing.T) {
	file := `intakes:
  - name: A
    protocol: udp
    port: many
    intake_key: ABCDEFGH12345678
    debug: maybe
    receive_buffer: lots
    exporters: {address: 10.0.0.1}
`
	want := `intakes.yaml: line 4: intake "A": port: expected a whole number, not "many"
line 6: intake "A": debug: expected true or false, not "maybe"
line 7: intake "A": receive_buffer: size "lots": expected a positive number with an optional k, m, g or t suffix
line 8: intake "A": exporters: expected a list (lines starting with -), not keys and values`
	_, err := Parse([]byte(file), "intakes.yaml", t.TempDir(), env())
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

// The placeholders of Sekoia's documentation and of our examples are
// refused, each with its intake's line; the shipped example files hold
// nothing else, so they are refused until filled in.
func TestPlaceholderKeysAreRefused(t *testing.T) {
	_, err := Parse([]byte(sekoiaExample), "intakes.yaml", t.TempDir(), env())
	want := `intakes.yaml: line 3: intake "Techno1": intake_key INTA*****************_1 is an example's placeholder: put the intake's own key there (Sekoia.io, Intakes page)
line 7: intake "Techno2": intake_key INTA*****************_2 is an example's placeholder: put the intake's own key there (Sekoia.io, Intakes page)
line 13: intake "Techno3": intake_key INTA*****************_3 is an example's placeholder: put the intake's own key there (Sekoia.io, Intakes page)`
	if err == nil || !strings.HasPrefix(err.Error(), want+"\n") || !strings.Contains(err.Error(), `line 20: intake "Monitoring": intake_key `+MaskKey("INTAKE_KEY_FOR_STATS")+" is an example's placeholder") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	for _, key := range []string{"YOUR_INTAKE_KEY", "YOUR_FIREWALL_INTAKE_KEY", "your_key", "CHANGE_ME", "changeme", "INTAKE_KEY"} {
		file := "intakes:\n  - {name: A, protocol: udp, port: 514, intake_key: " + key + "}\n"
		if _, err := Parse([]byte(file), "f", t.TempDir(), env()); err == nil || !strings.Contains(err.Error(), `line 2: intake "A": intake_key `+MaskKey(key)+" is an example's placeholder") {
			t.Errorf("%s: %v", key, err)
		}
	}
	for _, path := range []string{"../deploy/intakes.yaml", "../deploy/debian/intakes.yaml"} {
		_, err := Load(path, env())
		if err == nil || !strings.Contains(err.Error(), "is an example's placeholder") {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"queue_sise", "queue_size", 1}, {"prot", "port", 1}, {"protcol", "protocol", 1}, {"colour", "color", 1}, {"sampling", "sampling_rate", 5}, {"abc", "", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// Whatever the file holds, Parse answers with a configuration or an
// error that names the file, and never panics.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{oldForwarderFile, sekoiaExample, "", "intakes: [\n", "intakes:\n  -\n", "intakes: [a, b]\n",
		"a: &x {b: 1}\nintakes:\n  - <<: *x\n    name: A\n", "intakes:\n  - {name: R, protocol: netflow, port: 2055, intake_key: ABCDEFGH12345678, exporters: [~, {address: 10.0.0.1, interfaces: {x: y}}]}\n",
		"intakes:\n  - {name: A, protocol: http, port: 514, plain_http: true, tls_client_auth: x, workers: 2, <<: {interval: 5s, intake_keys: any}}\n",
		"intakes:\n  - {name: A, protocol: tcp, port: 514, intake_key: ABCDEFGH12345678, outputs: [{transport: relp}, {name: b, transport: file, path: x}]}\noutputs: [~, {}]\n",
		"o: &o [{transport: relp}, ~]\nintakes:\n  - {name: A, protocol: tcp, port: 514, intake_key: ABCDEFGH12345678, output: {}, outputs: *o}\n  - {name: 'A#2', protocol: udp, port: 514, intake_key: ABCDEFGH12345678}\noutputs:\n"} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, file string) {
		c, err := Parse([]byte(file), "intakes.yaml", dir, env())
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "intakes.yaml: ") {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}
