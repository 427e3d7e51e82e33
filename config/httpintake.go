package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// DefaultMaxKeys bounds the keys an http intake with intake_keys: any
// ships to when max_keys is not given.
const DefaultMaxKeys = 100

// HTTPIntake is the block of keys of an http intake.
type HTTPIntake struct {
	// IntakeKeys are the keys it accepts, or any key; MaxKeys bounds how
	// many any takes.
	IntakeKeys KeyList `yaml:"intake_keys"`
	MaxKeys    int     `yaml:"max_keys"`
	// Bind is the address it listens on (default: every address).
	Bind string `yaml:"bind"`
	// PlainHTTP serves it without TLS: on a loopback Bind only, unless
	// InsecurePlainHTTP says the network on the way is trusted.
	PlainHTTP         bool `yaml:"plain_http"`
	InsecurePlainHTTP bool `yaml:"insecure_plain_http"`
}

// KeyList is an http intake's intake_keys: a list of keys, or any.
type KeyList struct {
	// Any accepts every well-formed key, each shipped as it first comes.
	Any  bool
	Keys []string
}

// UnmarshalYAML reads a list of keys or the word any.
func (k *KeyList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "any" {
		*k = KeyList{Any: true}
		return nil
	}
	var keys []string
	if n.Kind != yaml.SequenceNode || n.Decode(&keys) != nil {
		return errors.New("expected a list of keys or any")
	}
	*k = KeyList{Keys: keys}
	return nil
}

// CheckKey says what is wrong with an intake key, if anything: what an
// http intake with intake_keys: any asks of a key before it ships to it.
func CheckKey(key string) error { return checkKey(key) }

// MaskedKeys says which keys an intake ships to, never in full: its key,
// or an http intake's keys, or any with its bound.
func (in *Intake) MaskedKeys() string {
	switch {
	case in.HTTP == nil:
		return MaskKey(in.IntakeKey)
	case in.HTTP.IntakeKeys.Any:
		return fmt.Sprintf("any (at most %d)", in.HTTP.MaxKeys)
	}
	masked := make([]string, len(in.HTTP.IntakeKeys.Keys))
	for i, k := range in.HTTP.IntakeKeys.Keys {
		masked[i] = MaskKey(k)
	}
	return strings.Join(masked, ",")
}

// ListenAddr is where an http intake listens: bind and port.
func (in *Intake) ListenAddr() string {
	return net.JoinHostPort(in.HTTP.Bind, strconv.Itoa(in.Port))
}

// resolveHTTPIntake fills in the bound of intake_keys: any, and drops
// the TLS block of an intake served without TLS.
func (in *Intake) resolveHTTPIntake(where string) []error {
	h := in.HTTP
	if h.IntakeKeys.Any && h.MaxKeys == 0 {
		h.MaxKeys = DefaultMaxKeys
	}
	if !h.PlainHTTP {
		return nil
	}
	var errs []error
	if in.TLS.ClientAuth != "" {
		// No TLS, so no client certificate to ask for.
		errs = append(errs, fmt.Errorf("%s: tls_client_auth applies to tls intakes and http intakes without plain_http only", where))
	}
	in.TLS = nil
	return errs
}

// validateHTTPIntake checks the blocks of an http intake.
func (in *Intake) validateHTTPIntake(where string) []error {
	var errs []error
	h := in.HTTP
	if in.IntakeKey != "" {
		errs = append(errs, fmt.Errorf("%s: an http intake takes intake_keys (a list, or any), not intake_key", where))
	}
	switch {
	case h.IntakeKeys.Any:
		if h.MaxKeys < 0 {
			errs = append(errs, fmt.Errorf("%s: max_keys must not be negative", where))
		}
	case len(h.IntakeKeys.Keys) == 0:
		errs = append(errs, fmt.Errorf("%s: intake_keys is missing: the keys the intake accepts, or any", where))
	case h.MaxKeys != 0:
		errs = append(errs, fmt.Errorf("%s: max_keys applies to intake_keys: any", where))
	}
	seen := map[string]bool{}
	for i, k := range h.IntakeKeys.Keys {
		if err := checkKey(k); err != nil {
			errs = append(errs, fmt.Errorf("%s: intake_keys #%d: %w", where, i+1, err))
		} else if seen[k] {
			errs = append(errs, fmt.Errorf("%s: intake_keys #%d: %s given twice", where, i+1, MaskKey(k)))
		}
		seen[k] = true
	}
	if len(in.Routes) > 0 {
		errs = append(errs, fmt.Errorf("%s: routes do not apply to http intakes: the key comes with each request", where))
	}
	var bind netip.Addr
	if h.Bind != "" {
		var err error
		if bind, err = netip.ParseAddr(h.Bind); err != nil {
			errs = append(errs, fmt.Errorf("%s: bind %q is not an IP address", where, h.Bind))
		}
	}
	switch {
	case h.InsecurePlainHTTP && !h.PlainHTTP:
		errs = append(errs, fmt.Errorf("%s: insecure_plain_http goes with plain_http: true", where))
	case h.PlainHTTP && !h.InsecurePlainHTTP && !bind.IsLoopback():
		errs = append(errs, errors.New(where+": plain_http serves keys and events unencrypted: bind it to a loopback address (bind: 127.0.0.1), or say insecure_plain_http: true"))
	}
	errs = append(errs, in.Stream.validate(where)...)
	if in.TLS != nil {
		errs = append(errs, in.TLS.validate(where)...)
	}
	return errs
}
