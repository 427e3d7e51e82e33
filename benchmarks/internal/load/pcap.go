package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/flowgate/flowgate/decoder/pcap"
)

// Datagram is the UDP payload of one captured packet and who sent it.
type Datagram = pcap.Datagram

// maxCaptureBytes bounds the capture a replay holds in memory.
const maxCaptureBytes = 1 << 30

// ReadPcap reads the UDP payloads of a pcap or pcapng file, in order;
// port, when not 0, keeps only datagrams sent to that port.
func ReadPcap(path string, port uint16) ([]Datagram, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxCaptureBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a replay holds in memory", path, st.Size(), maxCaptureBytes)
	}
	r, err := pcap.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Datagram
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if port == 0 || d.To.Port() == port {
			d.Payload = bytes.Clone(d.Payload)
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no UDP datagram to replay", path)
	}
	return out, nil
}
