package https

import (
	"time"

	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// Sekoia's /jsons has no place for an event's own timestamp; its /array
// has one per event. A log that came with a timestamp (the local HTTP
// intake's) is written as an /array item, and a batch holding one goes to
// /array, its other events as items without a timestamp.

// timestamped writes the logs that carry a timestamp as /array items,
// {"json": "...", "timestamp": "..."}; everything else as enc does.
type timestamped struct{ ship.Encoder }

func (e timestamped) AppendLog(dst []byte, l *pb.Log) []byte {
	if l.Format != pb.LogFormat_UNPARSED || l.TimestampNs == 0 {
		return e.Encoder.AppendLog(dst, l)
	}
	dst = format.AppendBytes(append(dst, `{"json":`...), l.Msg)
	dst = append(dst, `,"timestamp":"`...)
	dst = time.Unix(0, l.TimestampNs).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// hasItems says whether a batch of JSON strings holds an /array item.
func hasItems(b *ship.Batch) bool {
	for i := range b.Len() {
		if e := b.Event(i); len(e) > 0 && e[0] == '{' {
			return true
		}
	}
	return false
}

// frameArray appends the /array body of b: each item with the key, each
// string event as an item of its own; flush, when not nil, is given the
// body after each item, as frame's is.
func frameArray(dst []byte, key string, b *ship.Batch, flush func([]byte) []byte) []byte {
	dst = append(dst, '[')
	for i := range b.Len() {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = format.AppendString(append(dst, `{"intake_key":`...), key)
		e := b.Event(i)
		if e[0] == '{' {
			dst = append(append(dst, ','), e[1:]...)
		} else {
			dst = append(append(append(dst, `,"json":`...), e...), '}')
		}
		if flush != nil {
			dst = flush(dst)
		}
	}
	return append(dst, ']')
}
