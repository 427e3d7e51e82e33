// Package config loads and validates intakes.yaml: the old forwarder's file,
// unchanged, plus flowgate's extra keys and the environment variables that
// keep their forwarder meaning. A file that loads is one that can run.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/flowgate/flowgate/route"
)

// Transports the output can use.
const (
	TransportHTTPS  = "https"
	TransportHTTP   = "http"
	TransportSyslog = "syslog"
	TransportRELP   = "relp"
	TransportFile   = "file"
)

// Protocols an intake can listen with.
const (
	ProtocolTCP     = "tcp"
	ProtocolUDP     = "udp"
	ProtocolTLS     = "tls"
	ProtocolNetFlow = "netflow"
	ProtocolSFlow   = "sflow"
	// ProtocolHTTP is the local intake that speaks Sekoia's HTTPS API
	// (httpintake.go).
	ProtocolHTTP = "http"
)

// Formats flow events can be written in.
const (
	FormatIPFIX   = "ipfix"
	FormatGoFlow2 = "goflow2"
)

//go:embed default.yaml
var defaultYAML []byte

// Config is a loaded, validated intakes.yaml with the environment applied.
type Config struct {
	Intakes []Intake `yaml:"intakes"`
	// Output is where intakes without an output block of their own ship;
	// when it names no transport, flow intakes ship over https (this field
	// is resolved for them) and log intakes over syslog, as the old
	// forwarder did (relp with RELP_OUTPUT). Each intake's resolved output
	// is Intake.Output.
	Output Output `yaml:"output"`
	// Outputs, in place of Output, sends each event to every output of
	// the list (see outputs.go).
	Outputs  []Output `yaml:"outputs"`
	Buffer   Buffer   `yaml:"buffer"`
	HTTP     HTTP     `yaml:"http"`
	Shutdown Shutdown `yaml:"shutdown"`
	// GeoIP names the MaxMind-format databases flows are enriched from.
	GeoIP GeoIP `yaml:"geoip"`
	// Log is how the appliance logs; run's --log-level and --log-format
	// win over it.
	Log Log `yaml:"log"`
	// CertsDir holds the TLS intakes' key and certificate files, as /certs
	// did in the old container.
	CertsDir string `yaml:"certs_dir"`

	// Source names where the configuration came from, for messages.
	Source string `yaml:"-"`
	// Path is the file it was loaded from, empty for the embedded default.
	Path string `yaml:"-"`

	// region, endpoint and relp are REGION, ENDPOINT and RELP_OUTPUT.
	region, endpoint string
	relp             bool
	// lines are where the file writes its output lists, for messages.
	lines outputLines
}

// Intake is one port mapped to one intake key. After loading, Kind says
// what it is and it holds the blocks of keys of its kind, and no other.
type Intake struct {
	Name string `yaml:"name"`
	// Protocol and Stats are what the file says the intake is; Kind is
	// that, resolved.
	Protocol  string `yaml:"protocol"`
	Stats     bool   `yaml:"stats"`
	Port      int    `yaml:"port"`
	IntakeKey string `yaml:"intake_key"`
	// Debug prints what comes in and what goes out to stdout, key masked.
	Debug bool `yaml:"debug"`
	// QueueSize bounds this intake's events held in memory; 0 takes a share
	// of buffer.memory_messages.
	QueueSize int `yaml:"queue_size"`
	// Output, when the file gives one, replaces the top-level output for
	// this intake. After loading it is always set: the output this intake
	// ships to, resolved.
	Output *Output `yaml:"output"`
	// Outputs, when the file gives them, replace the top-level output(s)
	// for this intake: each event goes to every one. After loading it is
	// always set: the resolved outputs, Output being the first.
	Outputs []Output `yaml:"outputs"`
	// Routes send the records they match to intake keys of their own, or
	// drop them; the first that matches takes a record. Without an
	// IntakeKey, what no route takes is dropped and counted.
	Routes []Route `yaml:"routes"`
	// Table is Routes compiled, nil without routes.
	Table *route.Table `yaml:"-"`

	Kind Kind `yaml:"-"`
	// The blocks of keys only some kinds take, written inline in the
	// intake's mapping; the kinds tag names the kinds that take each (see
	// kinds.go). A block is set when the intake's kind takes it, else nil.
	Stream *Stream     `yaml:",inline" kinds:"tcp,tls,http"`
	TLS    *TLS        `yaml:",inline" kinds:"tls,http"`
	UDP    *UDP        `yaml:",inline" kinds:"udp,netflow,sflow"`
	Flow   *Flow       `yaml:",inline" kinds:"netflow,sflow"`
	Report *Report     `yaml:",inline" kinds:"stats"`
	HTTP   *HTTPIntake `yaml:",inline" kinds:"http"`

	// Line is where the intake starts in the file, for messages.
	Line int `yaml:"-"`
}

// Output says where events go.
type Output struct {
	// Name tells an item of outputs: from the others, in its shipper's
	// name (intake#name) and buffer subject; its position (1, 2…) when
	// not given.
	Name string `yaml:"name"`
	// Transport is https, http, syslog, relp or file.
	Transport string `yaml:"transport"`
	// Endpoint overrides REGION: a base URL for https, host[:port]
	// otherwise (ports 10514 for syslog, 11514 for relp by default).
	Endpoint string `yaml:"endpoint"`
	// CAFile is an extra CA trusted for the endpoint, besides the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for syslog and relp
	// receivers of one's own that require one (Sekoia's intake does not).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Path is where transport file writes, one event a line; "-" is stdout.
	Path string `yaml:"path"`
	// ResendWindow, for transport syslog, is how far back the batches
	// accepted are sent again on each new connection, for those a receiver
	// took and lost; 0 sends none again. Unset is the transport's default.
	ResendWindow *time.Duration `yaml:"resend_window"`

	// Transport http: any HTTP log intake (see http.go). Preset fills in
	// the keys left out for a known destination.
	Preset string `yaml:"preset"`
	// URL is where batches are POSTed; {key} stands for the intake key.
	URL string `yaml:"url"`
	// Framing is how a request's body holds its events.
	Framing string `yaml:"framing"`
	// Gzip compresses the body (Content-Encoding: gzip).
	Gzip *bool `yaml:"gzip"`
	// Headers are sent with each request; {key} in a value is the key.
	Headers map[string]string `yaml:"headers"`
	// MaxRequestBytes bounds a request's body as sent; a larger batch goes
	// in halves. MaxEventBytes bounds one event; a larger one is a dead
	// letter.
	MaxRequestBytes Size `yaml:"max_request_bytes"`
	MaxEventBytes   Size `yaml:"max_event_bytes"`
	// Wrap, when set, sends each event as the value of this key of an
	// object ({"event": ...} for Splunk HEC); json framings only.
	Wrap string `yaml:"wrap"`
	// Success is a JSON object an answer must hold to count as accepted
	// ({"response":"ok"} for Loggly); empty: any 2xx.
	Success string `yaml:"success"`
}

// Buffer bounds the durable buffer and what is held in memory.
type Buffer struct {
	// Dir holds the JetStream store; it survives restarts.
	Dir string `yaml:"dir"`
	// DiskSpace bounds the store on disk (DISK_SPACE wins when set).
	DiskSpace Size `yaml:"disk_space"`
	// MemoryMessages bounds events held in memory over all intakes
	// (MEMORY_MESSAGES wins when set).
	MemoryMessages int `yaml:"memory_messages"`
	// NATSURL, when set, is an existing NATS cluster (comma-separated
	// URLs) that holds the buffer instead of the embedded server: several
	// flowgate nodes then share it. Dir is not used.
	NATSURL string `yaml:"nats_url"`
	// NATSCreds is a credentials file (user JWT and seed) for the cluster.
	NATSCreds string `yaml:"nats_creds"`
	// NATSCAFile is the CA of the cluster's TLS certificates (tls:// URLs),
	// besides the system roots.
	NATSCAFile string `yaml:"nats_ca_file"`
	// Replicas is how many cluster nodes keep a copy of each stream and
	// bucket (1 to 5; 3 survives the loss of one node). The embedded
	// server keeps one.
	Replicas int `yaml:"replicas"`
}

// GeoIP names MaxMind-format databases (GeoLite2, DB-IP Lite) that give
// flows AS numbers, AS organisations and countries; both are optional.
type GeoIP struct {
	ASNDatabase     string `yaml:"asn_database"`
	CountryDatabase string `yaml:"country_database"`
}

// Shutdown bounds a stop (SIGTERM, SIGINT).
type Shutdown struct {
	// Grace is how long the shippers may take to have what is in flight
	// accepted once the listeners have stopped.
	Grace time.Duration `yaml:"grace"`
	// Timeout bounds the whole stop; past it the process exits, and what
	// was not acknowledged is shipped after the next start.
	Timeout time.Duration `yaml:"timeout"`
}

// Log is how the appliance logs, on stderr.
type Log struct {
	// Level is debug, info (the default), warn or error.
	Level string `yaml:"level"`
	// Format is text (slog's key=value lines, the default) or json (one
	// object a line, for log collectors).
	Format string `yaml:"format"`
}

// The log levels and formats, in the order help lists them.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
)

// Validate says what is wrong with a log setting, naming where it came
// from (a key of the file, a flag).
func (l Log) Validate(levelFrom, formatFrom string) []error {
	var errs []error
	if l.Level != "" && !slices.Contains(LogLevels, l.Level) {
		errs = append(errs, fmt.Errorf("%s: unknown log level %q (%s)", levelFrom, l.Level, strings.Join(LogLevels, ", ")))
	}
	if l.Format != "" && !slices.Contains(LogFormats, l.Format) {
		errs = append(errs, fmt.Errorf("%s: unknown log format %q (%s)", formatFrom, l.Format, strings.Join(LogFormats, ", ")))
	}
	return errs
}

// HTTP is the monitoring listener.
type HTTP struct {
	// Listen is host:port for /metrics, /healthz, /readyz and the status page.
	Listen string `yaml:"listen"`
	// PProf mounts Go's profiler (/debug/pprof/) on the listener, for the
	// benchmarks and for hunting a slowdown; off by default, since it shows
	// the process's internals to whoever reaches the listener.
	PProf bool `yaml:"pprof"`
	// StallAfter is how long an output may have data waiting and none
	// accepted before /readyz says it is stalled.
	StallAfter time.Duration `yaml:"stall_after"`
}

// Defaults for keys the file leaves out.
const (
	defaultDataDir        = "/var/lib/flowgate"
	defaultDiskSpace      = Size(20 << 30)
	defaultMemoryMessages = 1_000_000
	defaultHTTPListen     = "127.0.0.1:9740"
	defaultStallAfter     = 2 * time.Minute
	defaultShutdownGrace  = 10 * time.Second
	defaultShutdownTime   = 30 * time.Second
	maxReplicas           = 5
	minDiskSpace          = Size(64 << 20)
	defaultCertsDir       = "/certs"
)

// Env reads an environment variable; tests pass their own.
type Env func(string) (string, bool)

// Load reads and validates the file at path, applying the environment.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(data, path, filepath.Dir(abs), env)
	if err != nil {
		return nil, err
	}
	c.Path = abs
	return c, nil
}

// Default is the embedded configuration the quick start runs: flows in on
// 2055, events out to stdout, nothing sent anywhere.
func Default(env Env) (*Config, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(defaultYAML, "embedded default", wd, env)
}

// Parse validates data as a configuration; relative paths in it are taken
// from dir.
func Parse(data []byte, source, dir string, env Env) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	c := &Config{Source: source}
	if err := decode(data, c); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	top := c.Output
	if err := c.applyEnv(env); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c.applyDefaults(dir)
	errs := c.resolveKinds()
	if err := c.validate(append(errs, c.resolveOutputs(top, dir)...)); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return c, nil
}

func (c *Config) applyEnv(env Env) error {
	if v, ok := env("DISK_SPACE"); ok && v != "" {
		s, err := ParseSize(v)
		if err != nil {
			return fmt.Errorf("DISK_SPACE: %w", err)
		}
		c.Buffer.DiskSpace = s
	}
	if v, ok := env("MEMORY_MESSAGES"); ok && v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return fmt.Errorf("MEMORY_MESSAGES: %q is not a positive whole number", v)
		}
		c.Buffer.MemoryMessages = n
	}
	c.region, _ = env("REGION")
	c.endpoint, _ = env("ENDPOINT")
	relp, _ := env("RELP_OUTPUT")
	c.relp = strings.TrimSpace(relp) != ""
	if c.Output.Endpoint == "" && c.transport() != TransportHTTP {
		e, err := regionEndpoint(c.region, c.endpoint, c.transport())
		if err != nil {
			return err
		}
		c.Output.Endpoint = e
	}
	return nil
}

func (c *Config) transport() string {
	if c.Output.Transport == "" {
		return TransportHTTPS
	}
	return c.Output.Transport
}

func (c *Config) applyDefaults(dir string) {
	c.Output.Transport = c.transport()
	if c.Output.CAFile != "" && !filepath.IsAbs(c.Output.CAFile) {
		c.Output.CAFile = filepath.Join(dir, c.Output.CAFile)
	}
	if c.Output.Path != "" && c.Output.Path != "-" && !filepath.IsAbs(c.Output.Path) {
		c.Output.Path = filepath.Join(dir, c.Output.Path)
	}
	if c.Buffer.Dir == "" {
		c.Buffer.Dir = defaultDataDir
	} else if !filepath.IsAbs(c.Buffer.Dir) {
		c.Buffer.Dir = filepath.Join(dir, c.Buffer.Dir)
	}
	if c.Buffer.DiskSpace == 0 {
		c.Buffer.DiskSpace = defaultDiskSpace
	}
	if c.Buffer.MemoryMessages == 0 {
		c.Buffer.MemoryMessages = defaultMemoryMessages
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = defaultHTTPListen
	}
	if c.HTTP.StallAfter == 0 {
		c.HTTP.StallAfter = defaultStallAfter
	}
	if c.Buffer.Replicas == 0 {
		c.Buffer.Replicas = 1
	}
	c.Buffer.NATSCreds = inDir(dir, c.Buffer.NATSCreds)
	c.Buffer.NATSCAFile = inDir(dir, c.Buffer.NATSCAFile)
	if c.Shutdown.Grace == 0 {
		c.Shutdown.Grace = defaultShutdownGrace
	}
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = defaultShutdownTime
	}
	if c.CertsDir == "" {
		c.CertsDir = defaultCertsDir
	}
	c.CertsDir = inDir(dir, c.CertsDir)
}

// inDir takes a relative path from the configuration file's folder.
func inDir(dir, path string) string {
	if path == "" || path == "-" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// resolveOutputs sets each intake's Outputs (and Output, the first) from
// its own output or outputs, or the file's top-level ones (top, as
// written). It returns what cannot be resolved.
func (c *Config) resolveOutputs(top Output, dir string) []error {
	errs := c.checkOutputLists()
	for i := range c.Intakes {
		in := &c.Intakes[i]
		list := c.outputsOf(i, top)
		in.Outputs = make([]Output, len(list))
		for j, o := range list {
			errs = append(errs, c.resolveOutput(in, &o, dir)...)
			if o.Name == "" {
				o.Name = strconv.Itoa(j + 1)
			}
			in.Outputs[j] = o
		}
		in.Output = &in.Outputs[0]
	}
	return errs
}

// resolveOutput resolves one output of an intake: the transport its kind
// ships with when none is named, the endpoint from REGION and ENDPOINT,
// paths from the file's folder.
func (c *Config) resolveOutput(in *Intake, o *Output, dir string) []error {
	var errs []error
	o.Transport = strings.ToLower(strings.TrimSpace(o.Transport))
	if o.Transport == "" {
		o.Transport = TransportHTTPS
		if in.Kind.IsLog() {
			o.Transport = TransportSyslog
			if c.relp {
				o.Transport = TransportRELP
			}
		}
	}
	if o.Transport == TransportHTTP {
		errs = append(errs, c.resolveHTTP(o)...)
	} else if o.Endpoint == "" {
		e, err := regionEndpoint(c.region, c.endpoint, o.Transport)
		if err != nil {
			errs = append(errs, err)
		}
		o.Endpoint = e
	}
	if o.Transport == TransportSyslog || o.Transport == TransportRELP {
		o.Endpoint = withPort(o.Endpoint, o.Transport)
	}
	o.CAFile = inDir(dir, o.CAFile)
	o.CertFile = inDir(dir, o.CertFile)
	o.KeyFile = inDir(dir, o.KeyFile)
	o.Path = inDir(dir, o.Path)
	return errs
}

// intakeKeyPattern is what Sekoia intake keys look like; anything else (a
// space, a quote, a placeholder left empty) would be refused by the intake
// or break the syslog header it travels in.
var intakeKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,256}$`)

// placeholderKey matches the stand-ins for a key in Sekoia's examples
// (INTAKE_KEY_FOR_TECHNO_1) and ours (YOUR_INTAKE_KEY, CHANGE_ME): a file
// copied without its keys filled in would ship to no one.
var placeholderKey = regexp.MustCompile(`(?i)^(your_\w*|intake_key_for_\w*|(\w*_)?change_?me(_\w*)?|intake_key)$`)

// checkKey says what is wrong with an intake key, if anything.
func checkKey(key string) error {
	switch {
	case placeholderKey.MatchString(key):
		return fmt.Errorf("intake_key %s is an example's placeholder: put the intake's own key there (Sekoia.io, Intakes page)", MaskKey(key))
	case !intakeKeyPattern.MatchString(key):
		return fmt.Errorf("intake_key %s is malformed: expected 8 to 256 letters, digits, '.', '_' or '-'", MaskKey(key))
	}
	return nil
}

func (c *Config) validate(resolveErrs []error) error {
	errs := dedupe(resolveErrs)
	if len(c.Intakes) == 0 {
		errs = append(errs, errors.New("no intakes: the file needs an intakes: list"))
	}
	names := map[string]int{}
	ports := map[string]int{}
	outputErrs := map[string]bool{}
	for i := range c.Intakes {
		in := &c.Intakes[i]
		where := in.where(i)
		if in.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name is missing", where))
		} else if prev, dup := names[in.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name already used by the intake at line %d", where, prev))
		} else {
			names[in.Name] = in.Line
		}
		switch {
		case in.Kind == KindHTTP:
			// Its keys come with each request: validateHTTPIntake.
		case in.IntakeKey == "" && len(in.Routes) > 0 && in.Kind != KindStats:
			// What no route takes is dropped.
		case in.IntakeKey == "":
			errs = append(errs, fmt.Errorf("%s: intake_key is missing", where))
		default:
			if err := checkKey(in.IntakeKey); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
		}
		errs = append(errs, in.validateRoutes(where)...)
		if in.QueueSize < 0 {
			errs = append(errs, fmt.Errorf("%s: queue_size must not be negative", where))
		}
		for j := range in.Outputs {
			o := &in.Outputs[j]
			// Problems of the top-level output are said once, for the
			// first intake that ships with it.
			for _, err := range validateOutput(o) {
				if outputErrs[err.Error()] {
					continue
				}
				outputErrs[err.Error()] = true
				ships := fmt.Sprintf("%s ships to %s", where, o.Transport)
				if len(in.Outputs) > 1 {
					ships = fmt.Sprintf("%s: output %q ships to %s", where, o.Name, o.Transport)
				}
				errs = append(errs, fmt.Errorf("%s: %w", ships, err))
			}
		}
		errs = append(errs, c.validateOutputList(i)...)
		errs = append(errs, in.validateKind(where)...)
		if in.Kind == KindStats {
			continue
		}
		family := in.Kind.Network()
		if in.Port < 1 || in.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %d is not between 1 and 65535", where, in.Port))
		} else if family != "" {
			key := fmt.Sprintf("%s/%d", family, in.Port)
			if prev, dup := ports[key]; dup {
				errs = append(errs, fmt.Errorf("%s: %s port %d already used by the intake at line %d", where, strings.ToUpper(family), in.Port, prev))
			} else {
				ports[key] = in.Line
			}
		}
	}
	errs = append(errs, c.checkShipperNames()...)
	if c.Output.Transport != "" && !knownTransport(c.Output.Transport) {
		errs = append(errs, fmt.Errorf("output.transport: unknown transport %q (https, http, syslog, relp or file)", c.Output.Transport))
	}
	if c.Buffer.DiskSpace < minDiskSpace {
		errs = append(errs, fmt.Errorf("buffer.disk_space %s is below the minimum of %s", c.Buffer.DiskSpace, minDiskSpace))
	}
	errs = append(errs, c.Log.Validate("log.level", "log.format")...)
	if c.HTTP.StallAfter < time.Second {
		errs = append(errs, fmt.Errorf("http.stall_after %s is below the minimum of 1s", c.HTTP.StallAfter))
	}
	if c.Buffer.MemoryMessages < 0 {
		errs = append(errs, errors.New("buffer.memory_messages must be positive"))
	}
	errs = append(errs, c.Buffer.validateNATS()...)
	if c.Shutdown.Grace < 0 || c.Shutdown.Timeout < 0 {
		errs = append(errs, errors.New("shutdown.grace and shutdown.timeout must not be negative"))
	} else if c.Shutdown.Grace >= c.Shutdown.Timeout {
		errs = append(errs, fmt.Errorf("shutdown.grace %s must be shorter than shutdown.timeout %s", c.Shutdown.Grace, c.Shutdown.Timeout))
	}
	return errors.Join(errs...)
}

// validateNATS checks the keys of an external NATS cluster.
func (b *Buffer) validateNATS() []error {
	var errs []error
	if b.NATSURL == "" {
		if b.Replicas != 1 || b.NATSCreds != "" || b.NATSCAFile != "" {
			errs = append(errs, errors.New("buffer.replicas, nats_creds and nats_ca_file apply with buffer.nats_url only (the embedded server keeps one copy)"))
		}
		return errs
	}
	for _, u := range strings.Split(b.NATSURL, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		switch {
		case err != nil:
			// The URL may hold a password: not repeated.
			errs = append(errs, errors.New("buffer.nats_url: a URL of the list cannot be read"))
		case pu.Scheme != "nats" && pu.Scheme != "tls" && pu.Scheme != "ws" && pu.Scheme != "wss":
			errs = append(errs, fmt.Errorf("buffer.nats_url: %q is not a nats://, tls://, ws:// or wss:// URL", pu.Redacted()))
		case pu.Host == "":
			errs = append(errs, fmt.Errorf("buffer.nats_url: %q names no host", pu.Redacted()))
		}
	}
	if b.Replicas < 1 || b.Replicas > maxReplicas {
		errs = append(errs, fmt.Errorf("buffer.replicas %d is not between 1 and %d", b.Replicas, maxReplicas))
	}
	for _, f := range []struct{ key, path string }{{"nats_creds", b.NATSCreds}, {"nats_ca_file", b.NATSCAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("buffer.%s: %w", f.key, err))
		}
	}
	return errs
}

func knownTransport(t string) bool {
	switch t {
	case TransportHTTPS, TransportHTTP, TransportSyslog, TransportRELP, TransportFile:
		return true
	}
	return false
}

// validateOutput checks one resolved output.
func validateOutput(o *Output) []error {
	var errs []error
	switch o.Transport {
	case TransportHTTPS:
		if err := validateBaseURL(o.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("output.endpoint: %w", err))
		}
	case TransportSyslog, TransportRELP:
		if err := validateHostPort(o.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("output.endpoint: %w", err))
		}
	case TransportHTTP:
		errs = append(errs, validateHTTP(o)...)
	case TransportFile:
		if o.Path == "" {
			errs = append(errs, errors.New("output.path is missing: transport file needs a file to write (\"-\" for stdout)"))
		}
	default:
		errs = append(errs, fmt.Errorf("output.transport: unknown transport %q (https, http, syslog, relp or file)", o.Transport))
	}
	for _, f := range []struct{ key, path string }{{"ca_file", o.CAFile}, {"cert_file", o.CertFile}, {"key_file", o.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("output.%s: %w", f.key, err))
		}
	}
	if w := o.ResendWindow; w != nil && o.Transport != TransportSyslog {
		errs = append(errs, errors.New("output.resend_window applies to transport syslog"))
	} else if w != nil && *w < 0 {
		errs = append(errs, fmt.Errorf("output.resend_window %s is negative (0s sends nothing again)", *w))
	}
	if o.Transport != TransportHTTP && o.hasHTTPKeys() {
		errs = append(errs, errors.New("output.preset, url, framing, gzip, headers, max_request_bytes, max_event_bytes, wrap and success apply to transport http"))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("output.cert_file and output.key_file go together"))
	} else if o.CertFile != "" && o.Transport != TransportSyslog && o.Transport != TransportRELP {
		errs = append(errs, errors.New("output.cert_file applies to transports syslog and relp"))
	}
	return errs
}

// dedupe drops repeated errors, keeping the first of each.
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, err := range errs {
		if !seen[err.Error()] {
			seen[err.Error()] = true
			out = append(out, err)
		}
	}
	return out
}

// MaskKey shows enough of an intake key to tell keys apart and never the
// whole of it.
func MaskKey(key string) string {
	if len(key) < 12 {
		return strings.Repeat("*", len(key))
	}
	return key[:4] + strings.Repeat("*", len(key)-6) + key[len(key)-2:]
}

// Size is a number of bytes, written in the file as 180g, 512m, 1t or plain bytes.
type Size int64

// UnmarshalYAML reads a size with an optional k, m, g or t suffix.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize reads 180g, 512m, 64k, 1t or a plain number of bytes; the
// suffixes are powers of 1024, as in rsyslog.
func ParseSize(text string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: expected a positive number with an optional k, m, g or t suffix", text)
	}
	return Size(n * mult), nil
}

// String writes the size with the largest suffix that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if int64(s) >= u.n && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}
