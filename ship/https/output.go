package https

import (
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/tlsfiles"
)

// Open makes the transport of an https output for one intake key;
// userAgent names the build, conns is how many sends the intake makes at
// once; files keeps its CA file current.
func Open(o *config.Output, key, userAgent string, conns int, files *tlsfiles.Set) (*Transport, error) {
	return New(Config{URL: config.HTTPSURL(o.Endpoint), IntakeKey: key, CAFile: o.CAFile, UserAgent: userAgent, Conns: conns, Files: files})
}

// Events are the flow events /jsons carries: each one a JSON string,
// written so at once.
func Events() format.IANA { return format.IANA{AsString: true} }
