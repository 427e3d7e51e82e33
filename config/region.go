package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
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
		return endpoint, nil
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
	return u.Host, nil
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
