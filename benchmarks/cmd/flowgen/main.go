// Command flowgen is the benchmarks' flow load generator: NetFlow v5, v9,
// IPFIX or sFlow v5 from several exporters at a paced rate, each record
// carrying a countable identity, or the UDP payloads of a capture file
// replayed. It prints what it sent as one JSON line on stdout.
//
//	flowgen -target 127.0.0.1:2055 -format ipfix -exporters 4 -rate 100000 -duration 30s -run 1
//	flowgen -target 127.0.0.1:2055 -pcap export.pcap -pcap-port 2055 -rate 5000 -duration 30s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowgate/flowgate/benchmarks/internal/exporter"
	"github.com/flowgate/flowgate/benchmarks/internal/load"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flowgen:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("target", "127.0.0.1:2055", "collector address (loopback only)")
	format := flag.String("format", "ipfix", "v5, v9, ipfix or sflow")
	exporters := flag.Int("exporters", 4, "exporters sending at once, each from its own loopback address (127.0.0.2, ...)")
	records := flag.Int("records", 0, "records per datagram (0: as many as fill 1400 bytes; v5 30)")
	rate := flag.Float64("rate", 10_000, "flows per second over all exporters (datagrams per second with -pcap)")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	runID := flag.Uint("run", 1, "run number carried by every flow (0-65535), to tell measurements apart")
	templates := flag.Duration("template-every", 5*time.Second, "how often v9 and IPFIX exporters send their templates again")
	pcap := flag.String("pcap", "", "replay the UDP payloads of this pcap file instead of generating flows")
	pcapPort := flag.Uint("pcap-port", 0, "with -pcap, replay only datagrams sent to this port (0: all)")
	flag.Parse()

	to, err := netip.ParseAddrPort(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	// Load goes to this machine only.
	if !to.Addr().IsLoopback() {
		return fmt.Errorf("-target %s: only loopback addresses are allowed", to)
	}
	if *runID > 0xffff || *pcapPort > 0xffff {
		return fmt.Errorf("-run and -pcap-port must be below 65536")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var sum load.Summary
	if *pcap != "" {
		dgs, err := load.ReadPcap(*pcap, uint16(*pcapPort))
		if err != nil {
			return err
		}
		sum, err = load.Replay(ctx, load.ReplayConfig{Target: to, Datagrams: dgs, Exporters: *exporters, Rate: *rate, Duration: *duration})
		if err != nil {
			return err
		}
	} else {
		f, err := exporter.ParseFormat(*format)
		if err != nil {
			return err
		}
		sum, err = load.Flows(ctx, load.FlowConfig{Target: to, Format: f, Exporters: *exporters, Records: *records,
			Rate: *rate, Duration: *duration, Run: uint16(*runID), TemplateEvery: *templates})
		if err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(sum)
}
