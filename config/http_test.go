package config

import (
	"strings"
	"testing"
)

func TestHTTPPresets(t *testing.T) {
	for _, tc := range []struct {
		name, output string
		env          map[string]string
		want         Output
	}{
		{"loggly", `{transport: http, preset: loggly}`, nil, Output{URL: "https://logs-01.loggly.com/bulk/{key}/tag/flowgate/",
			Framing: FramingLines, Success: `{"response":"ok"}`, MaxRequestBytes: 5 << 20, MaxEventBytes: 1 << 20,
			Headers: map[string]string{"Content-Type": "text/plain"}}},
		{"loggly with its own tags and a smaller request", `{transport: http, preset: loggly, url: "https://logs-01.loggly.com/bulk/{key}/tag/fw,dc1/", max_request_bytes: 1m}`, nil,
			Output{URL: "https://logs-01.loggly.com/bulk/{key}/tag/fw,dc1/", Framing: FramingLines, Success: `{"response":"ok"}`,
				MaxRequestBytes: 1 << 20, MaxEventBytes: 1 << 20, Headers: map[string]string{"Content-Type": "text/plain"}}},
		{"splunk_hec on a host alone", `{transport: http, preset: splunk_hec, url: "https://splunk.example:8088"}`, nil,
			Output{URL: "https://splunk.example:8088/services/collector/event", Framing: FramingJSONLines, Wrap: "event", Success: `{"code":0}`,
				MaxRequestBytes: 5 << 20, MaxEventBytes: 1 << 20, Headers: map[string]string{"Authorization": "Splunk {key}", "Content-Type": "application/json"}}},
		{"sekoia from REGION", `{transport: http, preset: sekoia}`, map[string]string{"REGION": "FRA2"},
			Output{URL: "https://intake.fra2.sekoia.io/api/v1/intake-http/jsons", Framing: FramingJSONArray,
				MaxRequestBytes: 9 << 20, MaxEventBytes: 250 << 10, Headers: map[string]string{"X-SEKOIAIO-INTAKE-KEY": "{key}", "Content-Type": "application/json"}}},
		{"no preset: headers of one's own win, in any case", `{transport: http, url: "https://logs.example/in?token={key}", framing: json_objects, headers: {content-type: application/x-ndjson, X-Tag: fw}}`, nil,
			Output{URL: "https://logs.example/in?token={key}", Framing: FramingJSONObjects, MaxRequestBytes: 5 << 20, MaxEventBytes: 1 << 20,
				Headers: map[string]string{"content-type": "application/x-ndjson", "X-Tag": "fw"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := load(t, "intakes:\n  - {name: fw, protocol: tcp, port: 514, intake_key: KEY, output: "+tc.output+"}\n", tc.env)
			if err != nil {
				t.Fatal(err)
			}
			o := c.Intakes[0].Output
			got := Output{URL: o.URL, Framing: o.Framing, Wrap: o.Wrap, Success: o.Success, MaxRequestBytes: o.MaxRequestBytes, MaxEventBytes: o.MaxEventBytes, Headers: o.Headers}
			if got.URL != tc.want.URL || got.Framing != tc.want.Framing || got.Wrap != tc.want.Wrap || got.Success != tc.want.Success ||
				got.MaxRequestBytes != tc.want.MaxRequestBytes || got.MaxEventBytes != tc.want.MaxEventBytes || !sameHeaders(got.Headers, tc.want.Headers) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSekoiaOutputIsThePreset: transport https is preset sekoia on its
// endpoint, one transport for both.
func TestSekoiaOutputIsThePreset(t *testing.T) {
	c, _, err := load(t, "intakes:\n  - {name: r, protocol: netflow, port: 2055, intake_key: KEY}\n  - {name: fw, protocol: tcp, port: 514, intake_key: KEY, output: {transport: http, preset: sekoia}}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	https, http := SekoiaOutput(c.Intakes[0].Output), c.Intakes[1].Output
	if https.URL != http.URL || https.Framing != http.Framing || *https.Gzip != *http.Gzip || !sameHeaders(https.Headers, http.Headers) ||
		https.MaxRequestBytes != http.MaxRequestBytes || https.MaxEventBytes != http.MaxEventBytes {
		t.Errorf("https %+v\nhttp  %+v", https, http)
	}
}

func TestHTTPOutputErrors(t *testing.T) {
	for _, tc := range []struct{ output, want string }{
		{`{transport: http}`, "line 2: intake \"fw\" ships to http: output.url is missing"},
		{`{transport: http, preset: papertrail}`, `unknown preset "papertrail"`},
		{`{transport: http, url: "http://logs.example/{key}"}`, "expected an https:// URL"},
		{`{transport: http, url: "https://{key}.example/"}`, "{key} in the host"},
		{`{transport: http, url: "https://logs.example/", framing: xml}`, `unknown framing "xml"`},
		{`{transport: http, url: "https://logs.example/", wrap: event}`, "wrap applies to framings json_objects and json_lines"},
		{`{transport: http, url: "https://logs.example/", max_request_bytes: 1m, max_event_bytes: 2m}`, "must not be above max_request_bytes"},
		{`{transport: http, url: "https://logs.example/", success: ok}`, "expected a JSON object"},
		{`{transport: http, url: "https://logs.example/", headers: {Content-Encoding: br}}`, "set by the transport"},
		{`{transport: http, url: "https://logs.example/", headers: {"bad header": x}}`, "not a valid header"},
		{`{transport: syslog, url: "https://logs.example/"}`, "apply to transport http"},
		{`{transport: http, preset: loggly, urls: x}`, `line 2: unknown key "urls" in output of intake "fw" (did you mean "url"?)`},
	} {
		_, _, err := load(t, "intakes:\n  - {name: fw, protocol: tcp, port: 514, intake_key: KEY, output: "+tc.output+"}\n", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.output, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the key: %v", tc.output, err)
		}
	}
}
