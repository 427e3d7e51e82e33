package https

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Probe posts an empty batch to url (the /jsons endpoint) on an
// established TLS connection, for `flowgate check --probe`: it creates no
// event, and the intake's answer (its status) says whether the endpoint
// and key are right. The caller bounds the time with the connection's
// deadline.
func Probe(conn *tls.Conn, url, key, userAgent string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("[]"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-SEKOIAIO-INTAKE-KEY", key)
	req.Header.Set("User-Agent", userAgent)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	text := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode/100 == 2:
		return resp.Status, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("%s: the intake key is refused (%s)", resp.Status, text)
	default:
		return "", fmt.Errorf("%s: %s", resp.Status, text)
	}
}
