package relp

import (
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

// Open makes the transport of a relp output; files keeps its TLS files
// current.
func Open(o *config.Output, files *tlsfiles.Set) (*Transport, error) {
	c := DefaultConfig(o.Endpoint, o.CAFile)
	c.CertFile, c.KeyFile, c.Files = o.CertFile, o.KeyFile, files
	return New(c)
}

// Frame is how RELP carries events: each the MSG of an RFC 5424 line that
// names the intake key, as syslog does.
func Frame(key string, events ship.Encoder) ship.Encoder {
	return format.Syslog{Key: key, Events: events}
}
