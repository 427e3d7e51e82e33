package https

import (
	"strings"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

// Open makes the transport of an https or http output for one intake
// key; userAgent names the build, conns is how many sends the intake makes
// at once; files keeps its CA file current.
func Open(o *config.Output, key, userAgent string, conns int, files *tlsfiles.Set) (*Transport, error) {
	cfg := FromOutput(resolved(o), key)
	cfg.UserAgent, cfg.Conns, cfg.Files = userAgent, conns, files
	return New(cfg)
}

// resolved is o as an http output: an https output is preset sekoia.
func resolved(o *config.Output) *config.Output {
	if o.Transport == config.TransportHTTPS {
		return config.SekoiaOutput(o)
	}
	return o
}

// Events are the flow events o's framing carries: JSON strings, written
// so at once, for json_array (Sekoia's /jsons); JSON objects otherwise.
func Events(o *config.Output) format.IANA {
	return format.IANA{AsString: resolved(o).Framing == config.FramingJSONArray}
}

// Frame makes enc's log events JSON strings where o's framing holds JSON
// values (json_objects, json_lines): a log is text, not JSON. For Sekoia,
// a log with a timestamp of its own becomes an /array item (array.go).
func Frame(o *config.Output, enc ship.Encoder) ship.Encoder {
	r := resolved(o)
	switch {
	case r.Framing == config.FramingJSONObjects, r.Framing == config.FramingJSONLines:
		return jsonLogs{enc}
	case arrayURL(r) != "":
		return timestamped{enc}
	}
	return enc
}

// arrayURL is the /array endpoint of Sekoia's /jsons (a resolved output
// with preset sekoia), "" for other outputs.
func arrayURL(r *config.Output) string {
	if r.Preset != config.PresetSekoia || !strings.HasSuffix(r.URL, "/jsons") {
		return ""
	}
	return strings.TrimSuffix(r.URL, "/jsons") + "/array"
}

// jsonLogs writes log events as JSON strings.
type jsonLogs struct{ ship.Encoder }

func (jsonLogs) AppendLog(dst []byte, l *pb.Log) []byte {
	return format.IANA{AsString: true}.AppendLog(dst, l)
}

// Sekoia is the configuration of Sekoia's /jsons under base for key,
// trusting caFile besides the system roots (tests and tools).
func Sekoia(base, key, caFile string) Config {
	return FromOutput(config.SekoiaOutput(&config.Output{Transport: config.TransportHTTPS, Endpoint: base, CAFile: caFile}), key)
}
