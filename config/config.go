// Package config loads and validates intakes.yaml: the old forwarder's file,
// unchanged, plus flowgate's extra keys and the environment variables that
// keep their forwarder meaning. A file that loads is one that can run.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Transports the output can use.
const (
	TransportHTTPS  = "https"
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
)

//go:embed default.yaml
var defaultYAML []byte

// Config is a loaded, validated intakes.yaml with the environment applied.
type Config struct {
	Intakes []Intake `yaml:"intakes"`
	Output  Output   `yaml:"output"`
	Buffer  Buffer   `yaml:"buffer"`
	HTTP    HTTP     `yaml:"http"`

	// Source names where the configuration came from, for messages.
	Source string `yaml:"-"`
}

// Intake is one port mapped to one intake key.
type Intake struct {
	Name      string `yaml:"name"`
	Protocol  string `yaml:"protocol"`
	Port      int    `yaml:"port"`
	IntakeKey string `yaml:"intake_key"`
	// Debug prints what comes in and what goes out to stdout, key masked.
	Debug bool `yaml:"debug"`
	// QueueSize bounds this intake's events held in memory; 0 takes a share
	// of buffer.memory_messages.
	QueueSize int  `yaml:"queue_size"`
	Stats     bool `yaml:"stats"`
	// TLS files under the certs directory (tls intakes), as in the old forwarder.
	TLSKeyName  string `yaml:"tls_key_name"`
	TLSCertName string `yaml:"tls_cert_name"`
	TLSCAName   string `yaml:"tls_ca_name"`

	// Line is where the intake starts in the file, for messages.
	Line int `yaml:"-"`
}

// Output says where events go.
type Output struct {
	// Transport is https, syslog, relp or file.
	Transport string `yaml:"transport"`
	// Endpoint overrides REGION: a base URL for https, host:port otherwise.
	Endpoint string `yaml:"endpoint"`
	// CAFile is an extra CA trusted for the endpoint, besides the system roots.
	CAFile string `yaml:"ca_file"`
	// Path is where transport file writes, one event a line; "-" is stdout.
	Path string `yaml:"path"`
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
}

// HTTP is the monitoring listener.
type HTTP struct {
	// Listen is host:port for /metrics, /healthz and /readyz.
	Listen string `yaml:"listen"`
	// PProf mounts Go's profiler (/debug/pprof/) on the listener, for the
	// benchmarks and for hunting a slowdown; off by default, since it shows
	// the process's internals to whoever reaches the listener.
	PProf bool `yaml:"pprof"`
}

// Defaults for keys the file leaves out.
const (
	defaultDataDir        = "/var/lib/flowgate"
	defaultDiskSpace      = Size(20 << 30)
	defaultMemoryMessages = 1_000_000
	defaultHTTPListen     = "127.0.0.1:9740"
	minDiskSpace          = Size(64 << 20)
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
	return Parse(data, path, filepath.Dir(abs), env)
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
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty", source)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		for i, line := range intakeLines(&root) {
			if i < len(c.Intakes) {
				c.Intakes[i].Line = line
			}
		}
	}
	if err := c.applyEnv(env); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c.applyDefaults(dir)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return c, nil
}

// intakeLines returns the line of each item of the top-level intakes list.
func intakeLines(root *yaml.Node) []int {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "intakes" || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		var lines []int
		for _, item := range m.Content[i+1].Content {
			lines = append(lines, item.Line)
		}
		return lines
	}
	return nil
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
	region, _ := env("REGION")
	endpoint, _ := env("ENDPOINT")
	if c.Output.Endpoint == "" {
		e, err := regionEndpoint(region, endpoint, c.transport())
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
	for i := range c.Intakes {
		in := &c.Intakes[i]
		in.Protocol = strings.ToLower(strings.TrimSpace(in.Protocol))
		if in.Protocol == ProtocolTLS {
			for _, name := range []*string{&in.TLSKeyName, &in.TLSCertName, &in.TLSCAName} {
				if *name == "" {
					*name = "server"
				}
			}
		}
	}
}

// intakeKeyPattern is what Sekoia intake keys look like; anything else (a
// space, a quote, a placeholder left empty) would be refused by the intake
// or break the syslog header it travels in.
var intakeKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,256}$`)

func (c *Config) validate() error {
	var errs []error
	if len(c.Intakes) == 0 {
		errs = append(errs, errors.New("no intakes: the file needs an intakes: list"))
	}
	names := map[string]int{}
	ports := map[string]int{}
	for i := range c.Intakes {
		in := &c.Intakes[i]
		where := fmt.Sprintf("line %d: intake %q", in.Line, in.Name)
		if in.Name == "" {
			where = fmt.Sprintf("line %d: intake #%d", in.Line, i+1)
			errs = append(errs, fmt.Errorf("%s: name is missing", where))
		} else if prev, dup := names[in.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name already used by the intake at line %d", where, prev))
		} else {
			names[in.Name] = in.Line
		}
		switch {
		case in.IntakeKey == "":
			errs = append(errs, fmt.Errorf("%s: intake_key is missing", where))
		case !intakeKeyPattern.MatchString(in.IntakeKey):
			errs = append(errs, fmt.Errorf("%s: intake_key %s is malformed: expected 8 to 256 letters, digits, '.', '_' or '-'", where, MaskKey(in.IntakeKey)))
		}
		if in.QueueSize < 0 {
			errs = append(errs, fmt.Errorf("%s: queue_size must not be negative", where))
		}
		if in.Stats {
			if in.Protocol != "" || in.Port != 0 {
				errs = append(errs, fmt.Errorf("%s: a stats intake takes no protocol or port: it ships the appliance's own counters", where))
			}
			continue
		}
		family := ""
		switch in.Protocol {
		case ProtocolTCP, ProtocolTLS:
			family = "tcp"
		case ProtocolUDP, ProtocolNetFlow, ProtocolSFlow:
			family = "udp"
		case "":
			errs = append(errs, fmt.Errorf("%s: protocol is missing (tcp, udp, tls, netflow or sflow)", where))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown protocol %q (tcp, udp, tls, netflow or sflow)", where, in.Protocol))
		}
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
	errs = append(errs, c.validateOutput()...)
	if c.Buffer.DiskSpace < minDiskSpace {
		errs = append(errs, fmt.Errorf("buffer.disk_space %s is below the minimum of %s", c.Buffer.DiskSpace, minDiskSpace))
	}
	if c.Buffer.MemoryMessages < 0 {
		errs = append(errs, errors.New("buffer.memory_messages must be positive"))
	}
	return errors.Join(errs...)
}

func (c *Config) validateOutput() []error {
	var errs []error
	o := &c.Output
	switch o.Transport {
	case TransportHTTPS:
		if err := validateBaseURL(o.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("output.endpoint: %w", err))
		}
	case TransportFile:
		if o.Path == "" {
			errs = append(errs, errors.New("output.path is missing: transport file needs a file to write (\"-\" for stdout)"))
		}
	case TransportSyslog, TransportRELP:
		errs = append(errs, fmt.Errorf("output.transport %q is not available yet in this version (https or file)", o.Transport))
	default:
		errs = append(errs, fmt.Errorf("output.transport: unknown transport %q (https, syslog, relp or file)", o.Transport))
	}
	if o.CAFile != "" {
		if _, err := os.Stat(o.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("output.ca_file: %w", err))
		}
	}
	return errs
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
		return fmt.Errorf("line %d: %w", n.Line, err)
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
