// Package https ships batches to the intake's HTTPS endpoint: POST
// <base>/jsons, a gzip-compressed JSON array of strings (one string an
// event), the intake key in X-SEKOIAIO-INTAKE-KEY. It only sends and
// reports the answer; ship decides about retries. Events come already
// written as JSON strings (the encoders' AsString form): the transport
// only joins them.
package https

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/tlsfiles"
)

const (
	// MaxRequestBytes keeps a request under the intake's 10 MiB limit with
	// the margin Sekoia's own SDK keeps.
	MaxRequestBytes = 9 << 20
	requestTimeout  = 30 * time.Second
	// maxAnswerBytes bounds how much of an answer is read.
	maxAnswerBytes = 1 << 20
	keyHeader      = "X-SEKOIAIO-INTAKE-KEY"
)

// Config says where and how to send.
type Config struct {
	// URL is the full address batches are POSTed to (<base>/jsons).
	URL string
	// IntakeKey goes in X-SEKOIAIO-INTAKE-KEY; it is never logged.
	IntakeKey string
	// CAFile is an extra CA to trust besides the system roots.
	CAFile string
	// Files, when set, watches CAFile: new connections trust a renewed
	// one. Nil reads it once.
	Files *tlsfiles.Set
	// UserAgent names the sender.
	UserAgent string
	// Conns is how many connections may be open at once.
	Conns int
}

// Transport posts batches over HTTPS.
type Transport struct {
	cfg    Config
	client *http.Client
	files  *tlsfiles.Client
	// bufs are request buffers done with, kept: they grow to megabytes.
	// (A sync.Pool would drop them at every GC.)
	bufs chan *buffers
}

// New returns a transport; it opens connections as batches come.
func New(cfg Config) (*Transport, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("https endpoint %q: %w", cfg.URL, err)
	}
	files, err := cfg.Files.Client("https "+u.Host, u.Hostname(), cfg.CAFile, "", "")
	if err != nil {
		return nil, fmt.Errorf("https endpoint %q: %w", cfg.URL, err)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     files.Config(),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: max(cfg.Conns, 1),
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Transport{cfg: cfg, files: files, client: &http.Client{Transport: tr, Timeout: requestTimeout}, bufs: make(chan *buffers, max(cfg.Conns, 1)+1)}, nil
}

// buffers are one request's body being built and compressed.
type buffers struct {
	framed []byte
	body   bytes.Buffer
	gz     *gzip.Writer
}

func (t *Transport) getBuffers() *buffers {
	select {
	case b := <-t.bufs:
		return b
	default:
		gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return &buffers{gz: gz}
	}
}

func (t *Transport) putBuffers(b *buffers) {
	select {
	case t.bufs <- b:
	default:
	}
}

// Send posts the batch, whose events are JSON strings; a batch whose
// compressed body would pass MaxRequestBytes goes in halves.
func (t *Transport) Send(ctx context.Context, b *ship.Batch) error {
	bufs := t.getBuffers()
	defer t.putBuffers(bufs)
	if err := bufs.encode(b); err != nil {
		return err
	}
	if bufs.body.Len() > MaxRequestBytes && b.Len() > 1 {
		first, second := b.Split()
		if err := t.Send(ctx, first); err != nil {
			return err
		}
		return t.Send(ctx, second)
	}
	return t.post(ctx, bufs.body.Bytes())
}

// encode frames the events (JSON strings) as a JSON array and compresses it.
func (bufs *buffers) encode(b *ship.Batch) error {
	framed := append(bufs.framed[:0], '[')
	for i := range b.Len() {
		if i > 0 {
			framed = append(framed, ',')
		}
		framed = append(framed, b.Event(i)...)
	}
	bufs.framed = append(framed, ']')
	bufs.body.Reset()
	bufs.gz.Reset(&bufs.body)
	if _, err := bufs.gz.Write(bufs.framed); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	if err := bufs.gz.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	return nil
}

func (t *Transport) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("intake %s: %w", t.cfg.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(keyHeader, t.cfg.IntakeKey)
	if t.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", t.cfg.UserAgent)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("intake %s: %w", t.cfg.URL, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	// Read to the end so the connection can carry the next request.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &ship.Error{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        fmt.Errorf("intake %s answered %q", t.cfg.URL, firstLine(answer)),
	}
}

// Close closes idle connections.
func (t *Transport) Close() error {
	t.client.CloseIdleConnections()
	t.files.Close()
	return nil
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// firstLine is the start of an answer, for an error message.
func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

var _ ship.Transport = (*Transport)(nil)
