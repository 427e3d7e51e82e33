package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Framings of transport http: how a request's body holds its events.
const (
	// FramingLines is one event a line, control bytes escaped (Loggly's
	// bulk endpoint, plain-text intakes).
	FramingLines = "lines"
	// FramingJSONArray is a JSON array of strings, one an event (Sekoia's
	// /jsons).
	FramingJSONArray = "json_array"
	// FramingJSONObjects is a JSON array of events: flows as objects, logs
	// as strings (or objects with wrap).
	FramingJSONObjects = "json_objects"
	// FramingJSONLines is JSON values one after another, one a line, no
	// array (Splunk HEC, NDJSON intakes).
	FramingJSONLines = "json_lines"
)

// Presets of transport http.
const (
	PresetLoggly    = "loggly"
	PresetSplunkHEC = "splunk_hec"
	PresetSekoia    = "sekoia"
)

// KeyPlaceholder stands for the intake key in an http output's url and
// headers.
const KeyPlaceholder = "{key}"

// Defaults of transport http without a preset.
const (
	defaultHTTPRequestBytes = Size(5 << 20)
	defaultHTTPEventBytes   = Size(1 << 20)
	// Sekoia's limits (10 MiB a request, 250 KiB an event), with the
	// margin its own SDK keeps on requests.
	sekoiaRequestBytes = Size(9 << 20)
	sekoiaEventBytes   = Size(250 << 10)
	logglyBulkURL      = "https://logs-01.loggly.com/bulk/{key}/tag/flowgate/"
	splunkHECPath      = "/services/collector/event"
)

// preset is what a preset fills in; keys the file gives win.
type preset struct {
	url, framing, wrap, success string
	gzip                        bool
	headers                     map[string]string
	request, event              Size
}

// presets are the destinations transport http knows by name. Sekoia's
// url comes from REGION, Splunk's from the file (a host of one's own).
var presets = map[string]preset{
	PresetLoggly: {url: logglyBulkURL, framing: FramingLines, success: `{"response":"ok"}`,
		headers: map[string]string{"Content-Type": "text/plain"}, request: defaultHTTPRequestBytes, event: defaultHTTPEventBytes},
	PresetSplunkHEC: {framing: FramingJSONLines, wrap: "event", success: `{"code":0}`, gzip: true,
		headers: map[string]string{"Authorization": "Splunk {key}"}, request: defaultHTTPRequestBytes, event: defaultHTTPEventBytes},
	PresetSekoia: {framing: FramingJSONArray, gzip: true,
		headers: map[string]string{"X-SEKOIAIO-INTAKE-KEY": "{key}"}, request: sekoiaRequestBytes, event: sekoiaEventBytes},
}

// resolveHTTP fills an http output's keys from its preset and the
// defaults. It returns what cannot be resolved.
func (c *Config) resolveHTTP(o *Output) []error {
	o.Preset = strings.ToLower(strings.TrimSpace(o.Preset))
	o.Framing = strings.ToLower(strings.TrimSpace(o.Framing))
	p := preset{framing: FramingLines, request: defaultHTTPRequestBytes, event: defaultHTTPEventBytes}
	if o.Preset != "" {
		var ok bool
		if p, ok = presets[o.Preset]; !ok {
			return []error{fmt.Errorf("output.preset: unknown preset %q (loggly, splunk_hec or sekoia)", o.Preset)}
		}
	}
	if o.URL == "" {
		o.URL = p.url
		if o.Preset == PresetSekoia {
			base, err := regionEndpoint(c.region, c.endpoint, TransportHTTPS)
			if err != nil {
				return []error{err}
			}
			o.URL = HTTPSURL(base)
		}
	} else if u, err := url.Parse(o.URL); o.Preset == PresetSplunkHEC && err == nil && strings.Trim(u.Path, "/") == "" {
		// A HEC host alone: its event endpoint.
		u.Path = splunkHECPath
		o.URL = u.String()
	}
	applyPreset(o, p)
	return nil
}

// applyPreset fills the keys o leaves out from p.
func applyPreset(o *Output, p preset) {
	if o.Framing == "" {
		o.Framing = p.framing
	}
	if o.Wrap == "" {
		o.Wrap = p.wrap
	}
	if o.Success == "" {
		o.Success = p.success
	}
	if o.Gzip == nil {
		o.Gzip = &p.gzip
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = p.request
	}
	if o.MaxEventBytes == 0 {
		o.MaxEventBytes = p.event
	}
	headers := map[string]string{}
	for k, v := range p.headers {
		headers[k] = v
	}
	for k, v := range o.Headers {
		for pk := range headers {
			if strings.EqualFold(pk, k) {
				delete(headers, pk)
			}
		}
		headers[k] = v
	}
	if !hasHeader(headers, "Content-Type") {
		headers["Content-Type"] = "application/json"
		if o.Framing == FramingLines {
			headers["Content-Type"] = "text/plain"
		}
	}
	o.Headers = headers
}

// hasHeader says whether headers has name, in any case.
func hasHeader(headers map[string]string, name string) bool {
	for k := range headers {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// SekoiaOutput is an https output as the http output it is: preset
// sekoia on its endpoint. One transport serves both.
func SekoiaOutput(o *Output) *Output {
	h := *o
	h.Transport, h.Preset, h.URL = TransportHTTP, PresetSekoia, HTTPSURL(o.Endpoint)
	applyPreset(&h, presets[PresetSekoia])
	return &h
}

// hasHTTPKeys says whether o sets a key of transport http.
func (o *Output) hasHTTPKeys() bool {
	return o.Preset != "" || o.URL != "" || o.Framing != "" || o.Gzip != nil || len(o.Headers) > 0 ||
		o.MaxRequestBytes != 0 || o.MaxEventBytes != 0 || o.Wrap != "" || o.Success != ""
}

// WithKey is s with the placeholder replaced by key.
func WithKey(s, key string) string { return strings.ReplaceAll(s, KeyPlaceholder, key) }

// validateHTTP checks a resolved http output.
func validateHTTP(o *Output) []error {
	var errs []error
	switch u, err := url.Parse(WithKey(o.URL, "KEY")); {
	case o.URL == "":
		errs = append(errs, errors.New("output.url is missing: transport http needs the address to POST to (or a preset: loggly, splunk_hec, sekoia)"))
	case err != nil:
		errs = append(errs, fmt.Errorf("output.url %q cannot be read", o.URL))
	case u.Scheme != "https":
		errs = append(errs, fmt.Errorf("output.url %q: expected an https:// URL", o.URL))
	case u.Host == "" || strings.Contains(u.Host, "KEY"):
		errs = append(errs, fmt.Errorf("output.url %q: no host, or {key} in the host", o.URL))
	}
	switch o.Framing {
	case FramingLines, FramingJSONArray:
		if o.Wrap != "" {
			errs = append(errs, fmt.Errorf("output.wrap applies to framings json_objects and json_lines, not %s", o.Framing))
		}
	case FramingJSONObjects, FramingJSONLines:
	default:
		errs = append(errs, fmt.Errorf("output.framing: unknown framing %q (lines, json_array, json_objects or json_lines)", o.Framing))
	}
	for k, v := range o.Headers {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("output.headers: %q is not a valid header", k))
		}
		if strings.EqualFold(k, "Content-Encoding") || strings.EqualFold(k, "Content-Length") {
			errs = append(errs, fmt.Errorf("output.headers: %s is set by the transport (gzip: true or false)", k))
		}
	}
	if o.MaxRequestBytes < 0 || o.MaxEventBytes < 0 || o.MaxEventBytes > o.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("output.max_event_bytes %s must not be above max_request_bytes %s", o.MaxEventBytes, o.MaxRequestBytes))
	}
	if o.Success != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(o.Success), &m); err != nil || len(m) == 0 {
			errs = append(errs, fmt.Errorf("output.success %q: expected a JSON object such as {\"response\":\"ok\"}", o.Success))
		}
	}
	return errs
}

// validHeaderName says whether k is an HTTP token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
