package syslog

import (
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/ship"
)

// Open makes the transport of a syslog output.
func Open(o *config.Output) (*Transport, error) {
	c := DefaultConfig(o.Endpoint, o.CAFile)
	c.CertFile, c.KeyFile = o.CertFile, o.KeyFile
	return New(c)
}

// Frame is how syslog carries events: each the MSG of an RFC 5424 line
// that names the intake key.
func Frame(key string, events ship.Encoder) ship.Encoder {
	return format.Syslog{Key: key, Events: events}
}
