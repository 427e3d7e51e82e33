package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/flowgate/flowgate/appliance"
)

// healthcheckTimeout bounds the whole request: a container runtime treats
// a check that hangs as failed anyway.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks the appliance listening on listen (http.listen) for
// /readyz and fails unless it answers 200. It serves container health
// checks, where the runtime image has no shell or curl.
func healthcheck(listen string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	body, err := ask(ctx, listen, "/readyz")
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}

// alive is the systemd watchdog's liveness check: the monitoring listener
// answers /healthz, which takes its accept loop, the HTTP server and the
// scheduler turning. Readiness (an output down) has no part in it.
func alive(a *appliance.Appliance) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := ask(ctx, a.Addr().String(), "/healthz")
		return err
	}
}

// ask GETs path from the monitoring listener bound to listen and fails
// unless it answers 200; it returns the answer.
func ask(ctx context.Context, listen, path string) ([]byte, error) {
	url := "http://" + loopbackFor(listen) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
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
