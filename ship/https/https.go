// Package https ships batches to an HTTP log intake over HTTPS: Sekoia's
// <base>/jsons (transport https, which is preset sekoia: a gzip-compressed
// JSON array of strings, the key in X-SEKOIAIO-INTAKE-KEY) and any other
// (transport http: Loggly's bulk endpoint, Splunk HEC, ...), one
// transport configured by the output's url, framing, headers, limits and
// success answer. It only frames, sends and reports the answer; ship
// decides about retries. Events come already written for the framing
// (Events, Frame): the transport only joins them.
package https

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/ship"
	"github.com/flowgate/flowgate/ship/file"
	"github.com/flowgate/flowgate/tlsfiles"
)

const (
	requestTimeout = 30 * time.Second
	// maxAnswerBytes bounds how much of an answer is read.
	maxAnswerBytes = 1 << 20
)

// Config says where and how to send.
type Config struct {
	// URL is the full address batches are POSTed to, key in place.
	URL string
	// Shown is URL for messages, with the key masked: a key in a URL's
	// path (Loggly's) must not reach a log.
	Shown string
	// Header is sent with each request (the key in place).
	Header http.Header
	// Framing is how the body holds the events (config.Framing*).
	Framing string
	// Gzip compresses the body.
	Gzip bool
	// Wrap, when set, sends each event as {"<Wrap>": event}.
	Wrap string
	// MaxRequestBytes bounds a body as sent; MaxEventBytes one event.
	MaxRequestBytes, MaxEventBytes int
	// Success, when set, is what a 2xx answer's JSON object must hold.
	Success map[string]any
	// CAFile is an extra CA to trust besides the system roots.
	CAFile string
	// Files, when set, watches CAFile: new connections trust a renewed
	// one. Nil reads it once.
	Files *tlsfiles.Set
	// ArrayURL, when set (Sekoia), is where a batch holding events with a
	// timestamp goes (/array), each item with ArrayKey (array.go).
	ArrayURL, ArrayKey string
	// UserAgent names the sender.
	UserAgent string
	// Conns is how many connections may be open at once.
	Conns int
}

// FromOutput is the configuration of a resolved http output (an https
// one is config.SekoiaOutput) for one intake key.
func FromOutput(o *config.Output, key string) Config {
	cfg := Config{
		URL: config.WithKey(o.URL, key), Shown: config.WithKey(o.URL, config.MaskKey(key)),
		Header: http.Header{}, Framing: o.Framing, Gzip: o.Gzip != nil && *o.Gzip, Wrap: o.Wrap,
		MaxRequestBytes: int(o.MaxRequestBytes), MaxEventBytes: int(o.MaxEventBytes), CAFile: o.CAFile,
	}
	for k, v := range o.Headers {
		cfg.Header.Set(k, config.WithKey(v, key))
	}
	if u := arrayURL(o); u != "" {
		cfg.ArrayURL, cfg.ArrayKey = config.WithKey(u, key), key
	}
	if o.Success != "" {
		// Validated when the configuration was loaded.
		_ = json.Unmarshal([]byte(o.Success), &cfg.Success)
	}
	return cfg
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
		return nil, fmt.Errorf("https endpoint %q: cannot be read", cfg.Shown)
	}
	files, err := cfg.Files.Client("https "+u.Host, u.Hostname(), cfg.CAFile, "", "")
	if err != nil {
		return nil, fmt.Errorf("https endpoint %q: %w", cfg.Shown, err)
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

// Send posts the batch; a batch whose body would pass MaxRequestBytes
// goes in halves. An event over MaxEventBytes is refused as the intake
// would (413) before anything is sent: the shipper halves the batch down
// to that event and sets it aside.
func (t *Transport) Send(ctx context.Context, b *ship.Batch) error {
	if t.cfg.MaxEventBytes > 0 {
		for i := range b.Len() {
			if n := len(b.Event(i)); n > t.cfg.MaxEventBytes {
				return &ship.Error{Status: http.StatusRequestEntityTooLarge,
					Err: fmt.Errorf("intake %s: an event of %d bytes is over max_event_bytes %d", t.cfg.Shown, n, t.cfg.MaxEventBytes)}
			}
		}
	}
	bufs := t.getBuffers()
	defer t.putBuffers(bufs)
	to, array := t.cfg.URL, t.cfg.ArrayURL != "" && hasItems(b)
	if array {
		to = t.cfg.ArrayURL
	}
	body, err := bufs.encode(&t.cfg, b, array)
	if err != nil {
		return err
	}
	if t.cfg.MaxRequestBytes > 0 && len(body) > t.cfg.MaxRequestBytes && b.Len() > 1 {
		first, second := b.Split()
		if err := t.Send(ctx, first); err != nil {
			return err
		}
		return t.Send(ctx, second)
	}
	return t.post(ctx, to, body)
}

// gzipChunk is how much framed body is handed to the compressor at once:
// small enough to stay in the CPU's cache between framing and
// compressing, where framing a whole batch first and compressing it after
// read megabytes back from memory.
const gzipChunk = 32 << 10

// encode frames the events (as /array items when array) and compresses
// them when asked, and returns the body. Uncompressed, the body is the
// framed buffer itself.
func (bufs *buffers) encode(cfg *Config, b *ship.Batch, array bool) ([]byte, error) {
	framer := func(dst []byte, flush func([]byte) []byte) []byte {
		if array {
			return frameArray(dst, cfg.ArrayKey, b, flush)
		}
		return frame(dst, cfg, b, flush)
	}
	if !cfg.Gzip {
		bufs.framed = framer(bufs.framed[:0], nil)
		return bufs.framed, nil
	}
	bufs.body.Reset()
	bufs.gz.Reset(&bufs.body)
	var err error
	flush := func(dst []byte) []byte {
		if len(dst) >= gzipChunk && err == nil {
			_, err = bufs.gz.Write(dst)
			dst = dst[:0]
		}
		return dst
	}
	bufs.framed = framer(bufs.framed[:0], flush)
	if err == nil {
		_, err = bufs.gz.Write(bufs.framed)
	}
	if err == nil {
		err = bufs.gz.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	return bufs.body.Bytes(), nil
}

// frame appends the body of b in cfg's framing. The events come written
// for it (see Events and Frame): JSON strings for json_array, JSON values
// for the other json framings, text for lines. flush, when set, is given
// the buffer after each event and returns what is left of it to append to.
func frame(dst []byte, cfg *Config, b *ship.Batch, flush func([]byte) []byte) []byte {
	array := cfg.Framing == config.FramingJSONArray || cfg.Framing == config.FramingJSONObjects
	if array {
		dst = append(dst, '[')
	}
	for i := range b.Len() {
		e := b.Event(i)
		switch {
		case cfg.Framing == config.FramingLines:
			dst = append(file.AppendLine(dst, e), '\n')
		case array && i > 0:
			dst = append(dst, ',')
		}
		if cfg.Framing != config.FramingLines {
			if cfg.Wrap != "" {
				dst = append(format.AppendString(append(dst, '{'), cfg.Wrap), ':')
				dst = append(append(dst, e...), '}')
			} else {
				dst = append(dst, e...)
			}
			if !array {
				dst = append(dst, '\n')
			}
		}
		if flush != nil {
			dst = flush(dst)
		}
	}
	if array {
		dst = append(dst, ']')
	}
	return dst
}

// request is a POST of body to to with the output's headers.
func (cfg *Config) request(ctx context.Context, to string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("intake %s: cannot make a request", cfg.Shown)
	}
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	if cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if cfg.UserAgent != "" {
		req.Header.Set("User-Agent", cfg.UserAgent)
	}
	return req, nil
}

func (t *Transport) post(ctx context.Context, to string, body []byte) error {
	req, err := t.cfg.request(ctx, to, body)
	if err != nil {
		return err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, key and all: say the masked one.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("intake %s: %w", t.cfg.Shown, err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	// Read to the end so the connection can carry the next request.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if !t.cfg.succeeded(answer) {
			// Not what the intake says when it took the events: sent again.
			return fmt.Errorf("intake %s answered %s %q, not %v", t.cfg.Shown, resp.Status, firstLine(answer), t.cfg.Success)
		}
		return nil
	}
	return &ship.Error{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        fmt.Errorf("intake %s answered %q", t.cfg.Shown, firstLine(answer)),
	}
}

// succeeded says whether a 2xx answer holds every key of Success.
func (cfg *Config) succeeded(answer []byte) bool {
	if len(cfg.Success) == 0 {
		return true
	}
	var got map[string]any
	if json.Unmarshal(answer, &got) != nil {
		return false
	}
	for k, v := range cfg.Success {
		if !reflect.DeepEqual(got[k], v) {
			return false
		}
	}
	return true
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
