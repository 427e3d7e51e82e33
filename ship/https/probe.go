package https

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/ship"
)

// Probe posts a batch of no event to an https or http output on an
// established TLS connection, for `flowgate check --probe`: the request
// the transport would send, with the output's headers and framing (Sekoia
// "[]", Loggly an empty body, HEC an empty body), which creates no event;
// the answer says whether the endpoint and key are right. It returns what
// it sent and the answer's status. The caller bounds the time with the
// connection's deadline.
func Probe(conn *tls.Conn, o *config.Output, key, userAgent string) (sent, status string, err error) {
	cfg := FromOutput(resolved(o), key)
	cfg.UserAgent, cfg.Gzip = userAgent, false // an empty body is not worth compressing
	req, err := cfg.request(context.Background(), cfg.URL, frame(nil, &cfg, ship.NewBatch(), nil))
	if err != nil {
		return "", "", err
	}
	sent = fmt.Sprintf("POST %s with no event", cfg.Shown)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return sent, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return sent, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	text := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode/100 == 2:
		return sent, resp.Status, nil
	case resp.StatusCode == http.StatusBadRequest && noData(body):
		// Splunk HEC checks the token before the body: "No data" (code
		// 5) says the token was accepted.
		return sent, resp.Status + " (no data: the key is accepted)", nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return sent, "", fmt.Errorf("%s: the intake key is refused (%s)", resp.Status, text)
	default:
		return sent, "", fmt.Errorf("%s: %s", resp.Status, text)
	}
}

// noData says whether an answer is Splunk HEC's to a request with no
// event.
func noData(answer []byte) bool {
	var a struct {
		Code *int `json:"code"`
	}
	return json.Unmarshal(answer, &a) == nil && a.Code != nil && *a.Code == 5
}
