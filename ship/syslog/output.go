package syslog

import (
	"log/slog"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

// Open makes the transport of a syslog output; files keeps its TLS files
// current, log says when it resends.
func Open(o *config.Output, files *tlsfiles.Set, log *slog.Logger) (*Transport, error) {
	c := DefaultConfig(o.Endpoint, o.CAFile)
	c.CertFile, c.KeyFile, c.Files = o.CertFile, o.KeyFile, files
	c.ResendWindow = ResendWindow(o)
	c.Log = log
	return New(c)
}

// ResendWindow is how far back an output sends again after a reconnect.
func ResendWindow(o *config.Output) time.Duration {
	if o.ResendWindow != nil {
		return *o.ResendWindow
	}
	return DefaultResendWindow
}

// Frame is how syslog carries events: each the MSG of an RFC 5424 line
// that names the intake key.
func Frame(key string, events ship.Encoder) ship.Encoder {
	return format.Syslog{Key: key, Events: events}
}
