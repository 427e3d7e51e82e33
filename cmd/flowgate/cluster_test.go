package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// Scale-out: two flowgate nodes keep their buffer in a three-server NATS
// cluster (replicas 3) and share the intake's consumer, each receiving
// part of the flows. The server leading the stream is killed mid-stream:
// every record arrives.
func TestTwoNodesOnANATSClusterLoseNothingWhenAServerDies(t *testing.T) {
	// It waits on peers most of its time: it runs beside others.
	t.Parallel()
	cluster := peers.NewNATSCluster(t, 3)
	intake := intaketest.NewHTTPS(t)
	type node struct {
		proc   *apptest.Proc
		stream *testtraffic.V5Stream
	}
	var nodes []node
	for i := range 2 {
		dir := t.TempDir()
		port := apptest.FreePort(t, "udp")
		httpAddr := fmt.Sprintf("127.0.0.1:%d", apptest.FreePort(t, "tcp"))
		cfg := "intakes:\n" + netflowIntake("Routers", port, testKey, intake) +
			fmt.Sprintf("buffer:\n  nats_url: %s\n  replicas: 3\nhttp:\n  listen: %s\n", cluster.URLs(), httpAddr)
		path := filepath.Join(dir, "intakes.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, node{proc: apptest.Start(t, path, httpAddr, "DISK_SPACE=256m"), stream: testtraffic.NewV5Stream(t, port, uint32(1+i*1_000_000))})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan struct{}
	for _, n := range nodes {
		done = append(done, n.stream.Run(ctx, 15)) // 1500 records a second to each node
	}
	stop := func() {
		cancel()
		for _, d := range done {
			<-d
		}
	}
	defer stop()

	intake.WaitEvents(t, 6000, 60*time.Second)
	leader := cluster.Leader("FLOWGATE")
	cluster.Kill(leader)
	killed := len(intake.Events())
	// The stream goes on through the election, and a while after.
	intake.WaitEvents(t, killed+9000, 90*time.Second)
	stop()
	sent := 0
	for _, n := range nodes {
		sent += n.stream.Sent()
	}
	events := intake.WaitEvents(t, sent, 150*time.Second)
	dups := 0
	for i, n := range nodes {
		dups += n.stream.Check(t, events)
		if d := n.proc.Metric("flowgate_dropped_events_total"); d != 0 {
			t.Errorf("node %d dropped %v records", i+1, d)
		}
		if s := n.proc.Metric("flowgate_shipped_events_total"); s == 0 {
			t.Errorf("node %d shipped nothing: the consumer is not shared", i+1)
		}
	}
	t.Logf("killed %s with %d events accepted; %d records sent, %d arrived, %d duplicates; shipped %v and %v",
		leader, killed, sent, len(events), dups, nodes[0].proc.Metric("flowgate_shipped_events_total"), nodes[1].proc.Metric("flowgate_shipped_events_total"))
}
