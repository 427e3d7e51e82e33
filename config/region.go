package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Default ports of the intake's syslog-TLS and RELP-TLS endpoints.
const (
	DefaultSyslogPort = 10514
	DefaultRELPPort   = 11514
)

// regionHTTPS maps REGION to the HTTPS intake's base URL (reference/sekoia.md).
var regionHTTPS = map[string]string{
	"FRA1": "https://intake.sekoia.io",
	"FRA2": "https://intake.fra2.sekoia.io/api/v1/intake-http",
	"MCO1": "https://intake.mco1.sekoia.io/api/v1/intake-http",
	"UAE1": "https://intake.uae1.sekoia.io/api/v1/intake-http",
	"USA1": "https://intake.usa1.sekoia.io/api/v1/intake-http",
	"SGP1": "https://intake.sgp1.sekoia.io",
}

// regionOther is the region whose endpoint comes from ENDPOINT.
const regionOther = "OTHER"

// regionEndpoint resolves REGION and ENDPOINT for a transport. An unknown
// region is an error: the old forwarder's silent fall-back to FRA1 sent
// events to the wrong tenant's region.
func regionEndpoint(region, endpoint, transport string) (string, error) {
	region = strings.ToUpper(strings.TrimSpace(region))
	endpoint = strings.TrimSpace(endpoint)
	if transport == TransportFile {
		return "", nil
	}
	switch {
	case region == "" && endpoint != "":
		region = regionOther
	case region == "":
		region = "FRA1"
	}
	if region == regionOther {
		if endpoint == "" {
			return "", fmt.Errorf("REGION=OTHER needs ENDPOINT (or output.endpoint in the file)")
		}
		if transport == TransportHTTPS {
			return endpoint, nil
		}
		// One ENDPOINT serves every transport: an https URL gives the host.
		if u, err := url.Parse(endpoint); err == nil && u.Scheme != "" && u.Hostname() != "" {
			return net.JoinHostPort(u.Hostname(), strconv.Itoa(defaultPort(transport))), nil
		}
		return withPort(endpoint, transport), nil
	}
	base, ok := regionHTTPS[region]
	if !ok {
		known := make([]string, 0, len(regionHTTPS)+1)
		for r := range regionHTTPS {
			known = append(known, r)
		}
		slices.Sort(known)
		return "", fmt.Errorf("REGION %q is unknown (%s or %s with ENDPOINT)", region, strings.Join(known, ", "), regionOther)
	}
	if endpoint != "" {
		return "", fmt.Errorf("ENDPOINT is set but REGION is %s: set REGION=OTHER to use ENDPOINT, or unset ENDPOINT", region)
	}
	if transport == TransportHTTPS {
		return base, nil
	}
	u, _ := url.Parse(base)
	return withPort(u.Hostname(), transport), nil
}

// withPort completes a syslog or RELP endpoint: a host alone gets the
// transport's default port.
func withPort(endpoint, transport string) string {
	if endpoint == "" || strings.Contains(endpoint, "://") {
		return endpoint
	}
	if _, _, err := net.SplitHostPort(endpoint); err == nil {
		return endpoint
	}
	return net.JoinHostPort(strings.Trim(endpoint, "[]"), strconv.Itoa(defaultPort(transport)))
}

func defaultPort(transport string) int {
	if transport == TransportRELP {
		return DefaultRELPPort
	}
	return DefaultSyslogPort
}

// validateHostPort checks a syslog or RELP endpoint.
func validateHostPort(endpoint string) error {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || strings.Contains(endpoint, "://") {
		return fmt.Errorf("%q: expected host:port", endpoint)
	}
	if host == "" {
		return fmt.Errorf("%q: no host", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not between 1 and 65535", endpoint, port)
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return fmt.Errorf("%q: expected host:port", endpoint)
	}
	return nil
}

// validateBaseURL checks an HTTPS intake base URL.
func validateBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("%q: %w", base, err)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q: expected an https:// URL", base)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: a base URL takes no query or fragment", base)
	}
	return nil
}

// HTTPSURL is where batches are POSTed for a base URL.
func HTTPSURL(base string) string {
	return strings.TrimSuffix(base, "/") + "/jsons"
}
