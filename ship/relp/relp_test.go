package relp

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
		events = append(events, enc.AppendLog(nil, &pb.Log{TimeReceivedNs: uint64(time.Now().UnixNano()), Pri: 13, Hostname: []byte("h"), AppName: []byte("relptest"), Msg: []byte(fmt.Sprintf("event %d", i))}))
	}
	return ship.NewBatch(events...)
}

func TestRELPToRsyslog(t *testing.T) {
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	rcv := peers.RsyslogReceiver(t, certs, apptest.FreePort(t, "tcp"), port)
	cfg := DefaultConfig(fmt.Sprintf("localhost:%d", port), certs.CA)
	cfg.CertFile, cfg.KeyFile = certs.ClientCert, certs.ClientKey
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const batches, per = 5, 300 // more than a window per batch
	for i := range batches {
		if err := tr.Send(context.Background(), batch(i*per, per)); err != nil {
			t.Fatal(err)
		}
	}
	got := rcv.WaitMessages(t, batches*per, 30*time.Second)
	seen := map[string]int{}
	for _, m := range got {
		if m.Input != "relp-tls" || m.App != "relptest" || m.MsgID != "LOG" || m.SD != `[SEKOIA@53288 intake_key="TestKey-0123456789"]` {
			t.Fatalf("received %+v", m)
		}
		seen[m.Msg]++
	}
	for i := range batches * per {
		if n := seen[fmt.Sprintf("event %d", i)]; n != 1 {
			t.Errorf("event %d received %d times", i, n)
		}
	}
}

func TestRELPRefusesAnUntrustedServer(t *testing.T) {
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	peers.RsyslogReceiver(t, certs, apptest.FreePort(t, "tcp"), port)
	tr, err := New(DefaultConfig(fmt.Sprintf("localhost:%d", port), certs.OtherCA))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// The system roots and the wrong CA do not vouch for the receiver.
	if err := tr.Send(context.Background(), batch(0, 1)); err == nil {
		t.Fatal("sent to a receiver whose certificate no trusted CA signed")
	}
}
