package ship

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/flowgate/flowgate/format"
)

// printing is a transport that also writes each event it delivered as
// `[Output "KEY"] event`, one line each.
type printing struct {
	Transport
	w           io.Writer
	key, masked []byte
	prefix      []byte
}

// Printing wraps t for an intake with debug on: every event t delivers is
// written to w after it was accepted (so a retried batch is printed once),
// as Readable shows it. Each line goes in one Write: give a w that
// serialises writers.
func Printing(t Transport, w io.Writer, key, masked string) Transport {
	return &printing{Transport: t, w: w, key: []byte(key), masked: []byte(masked), prefix: []byte(`[Output "` + masked + `"] `)}
}

// Readable is an event as a person reads it: what a JSON string holds
// (the https transport sends each event as one), with the intake key
// masked wherever it appears.
func Readable(event, key, masked []byte) []byte {
	if len(event) > 0 && event[0] == '"' {
		var s string
		if json.Unmarshal(event, &s) == nil {
			event = []byte(s)
		}
	}
	if len(key) == 0 {
		return event
	}
	return bytes.ReplaceAll(event, key, masked)
}

func (p *printing) Send(ctx context.Context, b *Batch) error {
	if err := p.Transport.Send(ctx, b); err != nil {
		return err
	}
	// Sends of one shipper run in parallel: each builds its own lines.
	var line []byte
	for i := range b.Len() {
		line = append(line[:0], p.prefix...)
		line = format.AppendPrintable(line, Readable(b.Event(i), p.key, p.masked))
		line = append(line, '\n')
		_, _ = p.w.Write(line)
	}
	return nil
}
