package https

import (
	"testing"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/format"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// A log with a timestamp of its own goes to Sekoia as an /array item with
// it; a batch without one stays a /jsons array of strings.
func TestTimestampedLogsGoToArray(t *testing.T) {
	o := config.SekoiaOutput(&config.Output{Transport: config.TransportHTTPS, Endpoint: "https://intake.example/api/v1/intake-http"})
	cfg := FromOutput(o, "KEY-0123456789")
	if cfg.ArrayURL != "https://intake.example/api/v1/intake-http/array" {
		t.Fatalf("array URL %q", cfg.ArrayURL)
	}
	enc := Frame(o, Events(o))
	at := time.Date(2026, 12, 4, 8, 0, 0, 500_000_000, time.UTC).UnixNano()
	stamped := string(enc.AppendLog(nil, &pb.Log{Msg: []byte(`a "b"`), TimestampNs: at}))
	plain := string(enc.AppendLog(nil, &pb.Log{Msg: []byte("c")}))
	parsed := string(enc.AppendLog(nil, &pb.Log{Msg: []byte("d"), TimestampNs: at, Format: pb.LogFormat_RFC5424}))
	if stamped != `{"json":"a \"b\"","timestamp":"2026-12-04T08:00:00.5Z"}` || plain != `"c"` || parsed != `"d"` {
		t.Fatalf("events %s %s %s", stamped, plain, parsed)
	}
	mixed := ship.NewBatch([]byte(stamped), []byte(plain))
	if !hasItems(mixed) || hasItems(ship.NewBatch([]byte(plain), []byte(parsed))) {
		t.Error("hasItems")
	}
	want := `[{"intake_key":"KEY-0123456789","json":"a \"b\"","timestamp":"2026-12-04T08:00:00.5Z"},{"intake_key":"KEY-0123456789","json":"c"}]`
	if got := string(frameArray(nil, cfg.ArrayKey, mixed, nil)); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// Other outputs keep their events.
	loggly := &config.Output{Transport: config.TransportHTTP, Preset: config.PresetLoggly, URL: "https://logs.example/bulk/{key}/", Framing: config.FramingLines}
	if FromOutput(loggly, "k").ArrayURL != "" || string(Frame(loggly, format.IANA{}).AppendLog(nil, &pb.Log{Msg: []byte("e"), TimestampNs: at})) != "e" {
		t.Error("a timestamp changed a loggly event")
	}
}
