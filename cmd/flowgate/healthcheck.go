package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheckTimeout bounds the whole request: a container runtime treats
// a check that hangs as failed anyway.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks the appliance listening on listen (http.listen) for
// /readyz and fails unless it answers 200. It serves container health
// checks, where the runtime image has no shell or curl.
func healthcheck(listen string, stdout io.Writer) error {
	url := "http://" + loopbackFor(listen) + "/readyz"
	client := http.Client{Timeout: healthcheckTimeout}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}

// loopbackFor is where to reach a listener bound to listen from the same
// host: a wildcard address (0.0.0.0, ::, none) answers on 127.0.0.1.
func loopbackFor(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
