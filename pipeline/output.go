package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/monitoring"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/file"
	"github.com/flowgate/flowgate/ship/https"
	"github.com/flowgate/flowgate/ship/relp"
	"github.com/flowgate/flowgate/ship/syslog"
	"github.com/flowgate/flowgate/tlsfiles"
)

// Transports are the outputs' transports, one per distinct output (see
// OutputID), shared by the intakes that use it and closed with the last.
type Transports struct {
	// version goes in the https output's User-Agent.
	version string
	// files keeps the outputs' TLS files current; log is the appliance's.
	files *tlsfiles.Set
	log   *slog.Logger

	mu   sync.Mutex
	byID map[string]*sharedTransport
}

type sharedTransport struct {
	t     ship.Transport
	users int
}

// NewTransports returns an empty cache; version names the build to the
// remote intake, files keeps the outputs' TLS files current.
func NewTransports(version string, files *tlsfiles.Set, log *slog.Logger) *Transports {
	return &Transports{version: version, files: files, log: log, byID: map[string]*sharedTransport{}}
}

// output is what an intake ships with.
type output struct {
	id        string
	transport ship.Transport
	encoder   ship.Encoder
}

// OutputID names an intake's output: one transport serves every intake
// with the same output and key; the file output is one per file. `check
// --probe` tries each once.
func OutputID(in config.Intake) string {
	o := in.Output
	if o.Transport == config.TransportFile {
		return o.Transport + "\x00" + o.Path
	}
	id := []string{o.Transport, o.Endpoint, o.CAFile, o.CertFile, o.KeyFile, in.IntakeKey}
	if o.Transport == config.TransportHTTP {
		// Headers print sorted: the same output, the same id.
		id = append(id, o.URL, o.Framing, o.Wrap, o.Success, fmt.Sprint(o.Headers, o.Gzip != nil && *o.Gzip, o.MaxRequestBytes, o.MaxEventBytes))
	}
	if o.Transport == config.TransportSyslog {
		// Outputs that resend differently cannot share a connection.
		id = append(id, syslog.ResendWindow(o).String())
	}
	return strings.Join(id, "\x00")
}

// acquire returns the transport and the encoder of an intake's output,
// opening the transport if no other intake holds it. conns is how many
// sends the intake makes at once.
func (ts *Transports) acquire(in config.Intake, conns int, stdout io.Writer) (output, error) {
	o := in.Output
	events := format.IANA{}
	if o.Transport == config.TransportHTTPS || o.Transport == config.TransportHTTP {
		events = https.Events(o)
	}
	var enc ship.Encoder = events
	if in.Flow != nil && in.Flow.Format == config.FormatGoFlow2 {
		enc = format.GoFlow2{IANA: events}
	}
	switch o.Transport {
	case config.TransportSyslog:
		enc = syslog.Frame(in.IntakeKey, enc)
	case config.TransportRELP:
		enc = relp.Frame(in.IntakeKey, enc)
	case config.TransportHTTP, config.TransportHTTPS:
		enc = https.Frame(o, enc)
	}
	id := OutputID(in)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st, ok := ts.byID[id]
	if !ok {
		t, err := ts.open(in, conns, stdout)
		if err != nil {
			return output{}, err
		}
		st = &sharedTransport{t: t}
		ts.byID[id] = st
	}
	st.users++
	t := st.t
	if in.Debug {
		t = ship.Printing(t, stdout, in.IntakeKey, config.MaskKey(in.IntakeKey))
	}
	return output{id: id, transport: t, encoder: enc}, nil
}

// open makes the transport of an intake's output.
func (ts *Transports) open(in config.Intake, conns int, stdout io.Writer) (ship.Transport, error) {
	o := in.Output
	switch o.Transport {
	case config.TransportFile:
		return file.Open(o, stdout)
	case config.TransportSyslog:
		return syslog.Open(o, ts.files, ts.log.With("key", config.MaskKey(in.IntakeKey)))
	case config.TransportRELP:
		return relp.Open(o, ts.files)
	default:
		return https.Open(o, in.IntakeKey, "flowgate/"+ts.version, conns, ts.files)
	}
}

// release lets go of a transport, closing it with its last user.
func (ts *Transports) release(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st, ok := ts.byID[id]
	if !ok {
		return
	}
	if st.users--; st.users == 0 {
		_ = st.t.Close()
		delete(ts.byID, id)
	}
}

// Close closes every transport still held.
func (ts *Transports) Close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for id, st := range ts.byID {
		_ = st.t.Close()
		delete(ts.byID, id)
	}
}

// HostPort is where an output connects: the endpoint's (or the http
// output's url's) host and port, 443 when an https URL has none. The file
// output connects nowhere.
func HostPort(o *config.Output) (host, port string, err error) {
	switch o.Transport {
	case config.TransportFile:
		return "", "", fmt.Errorf("the file output connects nowhere")
	case config.TransportHTTPS, config.TransportHTTP:
		raw := o.Endpoint
		if o.Transport == config.TransportHTTP {
			// The key may be in the path, never in the host.
			raw = config.WithKey(o.URL, "")
		}
		u, err := url.Parse(raw)
		if err != nil {
			return "", "", err
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return u.Hostname(), port, nil
	}
	return net.SplitHostPort(o.Endpoint)
}

// StatsSource describes an intake for the monitoring-events intake's
// reports.
func StatsSource(in config.Intake) monitoring.Source {
	src := monitoring.Source{Name: in.Name, Port: in.Port}
	if in.Kind != config.KindStats {
		src.Protocol = string(in.Kind)
	}
	if host, port, err := HostPort(in.Output); err == nil {
		src.Host = host
		src.OutPort, _ = strconv.Atoi(port)
	}
	return src
}
