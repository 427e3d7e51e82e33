package syslog

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowgate/flowgate/format"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/peers"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/ship"
)

// batch makes n RFC 5424 events numbered from first.
func batch(first, n int) *ship.Batch {
	enc := format.Syslog{Key: "TestKey-0123456789", Events: format.IANA{}}
	var events [][]byte
	for i := first; i < first+n; i++ {
		events = append(events, enc.AppendLog(nil, &pb.Log{TimeReceivedNs: uint64(time.Now().UnixNano()), Pri: 13, Hostname: []byte("h"), AppName: []byte("tlstest"), Msg: []byte(fmt.Sprintf("event %d\nsecond line", i))}))
	}
	return ship.NewBatch(events...)
}

// counts checks what the receiver got: events 0..n-1, each at least
// once, with the key's SD; it returns how many arrived more than once.
func counts(t *testing.T, got []peers.Received, n int) int {
	t.Helper()
	seen := map[string]int{}
	for _, m := range got {
		if m.Input != "syslog-tls" || m.App != "tlstest" || m.MsgID != "LOG" || m.SD != `[SEKOIA@53288 intake_key="TestKey-0123456789"]` {
			t.Fatalf("received %+v", m)
		}
		seen[m.Msg]++
	}
	dup := 0
	for i := range n {
		switch c := seen[fmt.Sprintf("event %d\nsecond line", i)]; {
		case c == 0:
			t.Errorf("event %d lost", i)
		case c > 1:
			dup++
		}
	}
	return dup
}

func setup(t *testing.T) (*peers.Rsyslog, *Transport) {
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	rcv := peers.RsyslogReceiver(t, certs, port, apptest.FreePort(t, "tcp"))
	tr, err := New(DefaultConfig(fmt.Sprintf("localhost:%d", port), certs.CA))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return rcv, tr
}

func TestSyslogTLSToRsyslog(t *testing.T) {
	rcv, tr := setup(t)
	const batches, per = 5, 200
	for i := range batches {
		if err := tr.Send(context.Background(), batch(i*per, per)); err != nil {
			t.Fatal(err)
		}
	}
	if dup := counts(t, rcv.WaitMessages(t, batches*per, 30*time.Second), batches*per); dup != 0 {
		t.Fatalf("%d events arrived twice without any failure", dup)
	}
}

// TestSyslogTLSReceiverCrash kills the receiver right after it took
// batches (acknowledged by its TCP, maybe not yet written down), restarts
// it, and checks that nothing accepted is missing once sending goes on.
func TestSyslogTLSReceiverCrash(t *testing.T) {
	rcv, tr := setup(t)
	const per = 200
	next := 0
	send := func() error {
		err := tr.Send(context.Background(), batch(next*per, per))
		if err == nil {
			next++
		}
		return err
	}
	for range 3 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		rcv.Kill()
		if err := send(); err == nil {
			t.Fatal("a batch was accepted while the receiver was down")
		}
		rcv.Start()
		// As ship does, the failed batch is sent again; the transport
		// reconnects and first resends what the crash may have lost.
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	counts(t, rcv.WaitMessages(t, next*per, 30*time.Second), next*per)
}
