package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/ident"
	"github.com/flowgate/flowgate/benchmarks/internal/pace"
)

// Framings of syslog over TCP (RFC 6587).
const (
	OctetCounting = "octet"
	LineFeed      = "lf"
)

// SyslogConfig is a run of syslog messages over TCP.
type SyslogConfig struct {
	// Target is host:port.
	Target string
	Conns  int
	// Rate is in messages per second over all connections.
	Rate     float64
	Duration time.Duration
	Run      uint16
	// Size is about how many bytes a message has (its MSG is padded).
	Size int
	// Framing is OctetCounting or LineFeed.
	Framing string
	// TLS, when set, sends over TLS (RFC 5425) with this configuration.
	TLS *tls.Config
}

// Syslog sends RFC 5424 messages over several TCP connections, each
// pacing its share of the rate; a receiver slower than the rate pushes
// back through TCP, which shows as an achieved rate below the target.
func Syslog(ctx context.Context, cfg SyslogConfig) (Summary, error) {
	if cfg.Conns < 1 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return Summary{}, errors.New("connections, rate and duration must be positive")
	}
	if cfg.Framing != OctetCounting && cfg.Framing != LineFeed {
		return Summary{}, fmt.Errorf("framing %q: octet or lf", cfg.Framing)
	}
	if total := cfg.Rate * cfg.Duration.Seconds(); total > ident.MaxSeq {
		return Summary{}, fmt.Errorf("%.0f messages in one run: more than the %d a run can number", total, ident.MaxSeq)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	for range cfg.Conns {
		var c net.Conn
		var err error
		if cfg.TLS != nil {
			c, err = (&tls.Dialer{NetDialer: &d, Config: cfg.TLS}).DialContext(ctx, "tcp", cfg.Target)
		} else {
			c, err = d.DialContext(ctx, "tcp", cfg.Target)
		}
		if err != nil {
			return Summary{}, fmt.Errorf("syslog %s: %w", cfg.Target, err)
		}
		conns = append(conns, c)
	}
	host, _ := os.Hostname()
	var seq atomic.Uint32
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	results := make([]pace.Result, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriterSize(c, 64<<10)
			var msg []byte
			results[i], errs[i] = pace.Run(ctx, cfg.Rate/float64(len(conns)), cfg.Duration, func(n int) (int, error) {
				n = min(n, 256)
				now := time.Now()
				for range n {
					msg = AppendMessage(msg[:0], now, host, i, cfg.Run, seq.Add(1), cfg.Size)
					if cfg.Framing == OctetCounting {
						var prefix [12]byte
						w.Write(strconv.AppendInt(prefix[:0], int64(len(msg)), 10))
						w.WriteByte(' ')
						w.Write(msg)
					} else {
						w.Write(msg)
						w.WriteByte('\n')
					}
				}
				if err := w.Flush(); err != nil {
					return 0, fmt.Errorf("syslog %s: %w", cfg.Target, err)
				}
				return n, nil
			})
		}()
	}
	wg.Wait()
	sum := Summary{Run: cfg.Run, Format: "syslog-" + cfg.Framing, Exporters: len(conns), Sources: "tcp connections", TargetRate: cfg.Rate}
	for _, r := range results {
		sum.Events += r.Sent
	}
	sum.span(results)
	return sum, errors.Join(errs...)
}

// padding fills messages up to their size.
var padding = []byte("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat ")

// AppendMessage appends an RFC 5424 message (no framing) of about size
// bytes whose MSG carries the benchmark token of run and seq.
func AppendMessage(b []byte, now time.Time, host string, conn int, run uint16, seq uint32, size int) []byte {
	start := len(b)
	b = append(b, "<134>1 "...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, " loggen "...)
	b = strconv.AppendInt(b, int64(conn), 10)
	b = append(b, " bench - "...)
	b = ident.AppendToken(b, run, seq, now.UnixMilli())
	for len(b)-start < size {
		b = append(b, ' ')
		b = append(b, padding[:min(len(padding), size-(len(b)-start))]...)
	}
	return b
}
