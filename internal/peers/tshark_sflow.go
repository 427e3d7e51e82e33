package peers

import (
	"encoding/json"
	"strings"
	"testing"
)

// SFlowSample is one sample of an sFlow datagram as tshark decoded it.
type SFlowSample struct {
	// Datagram is the index of the datagram the sample came in.
	Datagram int
	// Header holds the datagram header's values (sflow_245.agent, ...).
	Header map[string]string
	// Fields holds every value of the sample by tshark's field name: the
	// sample's own (sflow.flow_sample.sampling_rate), its records'
	// (sflow_245.header.frame_length, sflow_245.ifinoct) and those of the
	// sampled packet's layers (eth.src, ip.src, ipv6.dst, tcp.srcport, ...).
	Fields map[string]string
}

// SFlowDecoded is what tshark found in a series of sFlow datagrams.
type SFlowDecoded struct {
	Flows    []SFlowSample
	Counters []SFlowSample
}

// TsharkSFlow decodes sFlow datagrams with tshark's sflow dissector.
func TsharkSFlow(t testing.TB, datagrams [][]byte) SFlowDecoded {
	t.Helper()
	var dec SFlowDecoded
	for i, p := range tsharkJSON(t, datagrams, 6343, "sflow") {
		raw, ok := p.Source.Layers["sflow"]
		if !ok {
			t.Fatalf("tshark: datagram %d is not sFlow", i)
		}
		var tree map[string]any
		if err := json.Unmarshal(raw, &tree); err != nil {
			t.Fatalf("tshark sflow layer: %v", err)
		}
		header := map[string]string{}
		for k, v := range tree {
			if s, ok := v.(string); ok {
				header[k] = s
			}
		}
		for _, v := range tree {
			sample, ok := v.(map[string]any)
			if !ok {
				continue
			}
			fields := map[string]string{}
			flatten(sample, fields)
			s := SFlowSample{Datagram: i, Header: header, Fields: fields}
			switch fields["sflow_245.sampletype"] {
			case "1", "3":
				dec.Flows = append(dec.Flows, s)
			case "2", "4":
				dec.Counters = append(dec.Counters, s)
			default:
				t.Fatalf("tshark: datagram %d holds a sample of type %q", i, fields["sflow_245.sampletype"])
			}
		}
	}
	return dec
}

// flatten copies every value of tree and its subtrees into dst, leaving
// out tshark's resolved names; of a name that repeats (eth.addr under both
// eth.src and eth.dst) one value is kept.
func flatten(tree map[string]any, dst map[string]string) {
	for k, v := range tree {
		switch v := v.(type) {
		case string:
			if !strings.HasSuffix(k, "_resolved") {
				dst[k] = v
			}
		case map[string]any:
			flatten(v, dst)
		}
	}
}
