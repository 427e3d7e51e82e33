package syslog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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

// setup starts rsyslogd and a transport to it, its configuration the
// default changed by edit.
func setup(t *testing.T, edit func(*Config)) (*peers.Rsyslog, *Transport) {
	certs := peers.NewCerts(t)
	port := apptest.FreePort(t, "tcp")
	rcv := peers.RsyslogReceiver(t, certs, port, apptest.FreePort(t, "tcp"))
	cfg := DefaultConfig(fmt.Sprintf("localhost:%d", port), certs.CA)
	edit(&cfg)
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return rcv, tr
}

func TestSyslogTLSToRsyslog(t *testing.T) {
	rcv, tr := setup(t, func(*Config) {})
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
	rcv, tr := setup(t, func(*Config) {})
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
	counts(t, waitEvents(t, rcv, next*per), next*per)
}

// waitEvents waits until events 0..n-1 all arrived (counting a message
// twice does not do: resent ones arrive first), and returns what did.
func waitEvents(t *testing.T, rcv *peers.Rsyslog, n int) []peers.Received {
	t.Helper()
	var got []peers.Received
	all := func() bool {
		got = rcv.Messages()
		seen := map[string]bool{}
		for _, m := range got {
			seen[m.Msg] = true
		}
		for i := range n {
			if !seen[fmt.Sprintf("event %d\nsecond line", i)] {
				return false
			}
		}
		return true
	}
	apptest.Eventually(30*time.Second, all)
	return got
}

// TestResendWindowAfterGracefulRestart measures what the window costs: once
// rsyslogd wrote down all it got and was restarted gracefully, it receives
// again every event accepted within the window, or within its size bound
// (the log line says how many); with a window of 0, none.
func TestResendWindowAfterGracefulRestart(t *testing.T) {
	const batches, per = 3, 200
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		resent int // batches sent again
	}{
		{"default window", func(*Config) {}, batches},
		// Room for the last two batches (and less than one more): their
		// events' numbers are the longest.
		{"size bound", func(c *Config) { c.ResendBytes = 2*len(AppendFrames(nil, batch((batches-1)*per, per))) + 100 }, 2},
		{"off", func(c *Config) { c.ResendWindow = 0 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log apptest.SyncBuffer
			rcv, tr := setup(t, func(c *Config) {
				tc.edit(c)
				c.Log = slog.New(slog.NewTextHandler(&log, nil))
			})
			for i := range batches {
				if err := tr.Send(context.Background(), batch(i*per, per)); err != nil {
					t.Fatal(err)
				}
			}
			rcv.WaitMessages(t, batches*per, 30*time.Second)
			rcv.Stop()
			rcv.Start()
			// As ship does, a batch that fails is sent again.
			if !apptest.Eventually(30*time.Second, func() bool {
				return tr.Send(context.Background(), batch(batches*per, per)) == nil
			}) {
				t.Fatal("no batch accepted after the receiver restarted")
			}
			n := (batches + 1) * per
			want := n + tc.resent*per
			got := rcv.WaitMessages(t, want, 30*time.Second)
			if dup := counts(t, got, n); dup != tc.resent*per || len(got) != want {
				t.Errorf("%d messages, %d events twice; want %d, %d twice", len(got), dup, want, tc.resent*per)
			}
			line := fmt.Sprintf("events=%d ", tc.resent*per)
			if tc.resent == 0 {
				line = "sending again"
				if strings.Contains(log.String(), line) {
					t.Errorf("log says it resends with the window off:\n%s", log.String())
				}
			} else if !strings.Contains(log.String(), line) || !strings.Contains(log.String(), "sending again") {
				t.Errorf("log lacks %q:\n%s", line, log.String())
			}
			t.Logf("%s: %d events accepted before the restart, %d received twice", tc.name, batches*per, tc.resent*per)
		})
	}
}

// TestAcceptedWhenTheReceiverClosesFirst: a batch rsyslogd wrote down is
// accepted even when its waiter first looks after rsyslogd closed the
// connection (a loaded box delays it past the close), so it is not sent
// again as a failed batch but kept in the window for the next connection;
// and nothing counts as acknowledged that was not written.
func TestAcceptedWhenTheReceiverClosesFirst(t *testing.T) {
	rcv, tr := setup(t, func(*Config) {})
	tr.mu.Lock()
	c, err := tr.connect(context.Background())
	if err == nil {
		err = c.write(AppendFrames(nil, batch(0, 100)), time.Minute)
	}
	tr.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	end := c.written.Load()
	rcv.WaitMessages(t, 100, 30*time.Second)
	rcv.Stop()
	select {
	case <-c.dead:
	case <-time.After(30 * time.Second):
		t.Fatal("the connection is not seen closed 30 s after rsyslogd stopped")
	}
	if err := c.waitAcked(context.Background(), end, time.Minute); err != nil {
		t.Errorf("a batch the receiver wrote down is taken for lost once it closed: %v", err)
	}
	// One byte more was never written: not accepted (Linux counts the SYN
	// among the bytes acknowledged).
	if err := c.waitAcked(context.Background(), end+1, time.Minute); err == nil {
		t.Errorf("%d bytes written, %d taken for acknowledged", end, c.ackedAtEnd)
	}
}
