package appliance

import (
	"fmt"
	"runtime"

	"github.com/flowgate/flowgate/buffer"
	"github.com/flowgate/flowgate/config"
)

// eventsPerMessage is about how many records a buffer message holds; it
// turns an event budget into a message budget.
const eventsPerMessage = 256

// BufferConfig is the store's configuration. The publish window is what
// the smallest intake's share of memory allows each of its publishers.
func BufferConfig(c *config.Config) buffer.Config {
	window := 256
	for _, in := range c.Intakes {
		window = min(window, max(pipelineConfig(c, in).MemoryEvents/4/eventsPerMessage/runtime.GOMAXPROCS(0), 8))
	}
	b := c.Buffer
	return buffer.Config{Dir: b.Dir, MaxBytes: int64(b.DiskSpace), URL: b.NATSURL, Creds: b.NATSCreds, CAFile: b.NATSCAFile,
		Replicas: b.Replicas, PublishWindow: window}
}

// DescribeBuffer says where the buffer is.
func DescribeBuffer(c *config.Config) string {
	if c.Buffer.NATSURL != "" {
		return fmt.Sprintf("NATS cluster %s, %d replicas", buffer.RedactURLs(c.Buffer.NATSURL), c.Buffer.Replicas)
	}
	return c.Buffer.Dir
}

// DescribeOutput says where an output sends.
func DescribeOutput(o *config.Output) string {
	switch o.Transport {
	case config.TransportHTTPS:
		return "https " + config.HTTPSURL(o.Endpoint)
	case config.TransportHTTP:
		// The url as written: {key} stands for the key.
		return "http " + o.URL
	case config.TransportFile:
		if o.Path == "-" {
			return "file stdout"
		}
		return "file " + o.Path
	}
	return o.Transport + " " + o.Endpoint
}
