package peers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Rsyslog is a running rsyslogd of Debian's, on its own configuration in a
// temporary folder, listening on loopback only.
type Rsyslog struct {
	t     testing.TB
	dir   string
	conf  string
	ports []int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// Received is one message a receiver wrote down, as rsyslog parsed it.
type Received struct {
	Input  string `json:"input"`
	PRI    string `json:"pri"`
	Host   string `json:"host"`
	App    string `json:"app"`
	ProcID string `json:"procid"`
	MsgID  string `json:"msgid"`
	SD     string `json:"sd"`
	Msg    string `json:"msg"`
}

// receivedTemplate writes each message as one JSON object (Received).
const receivedTemplate = `template(name="received" type="list") {
  constant(value="{")
  property(name="inputname" format="jsonf" outname="input") constant(value=",")
  property(name="pri" format="jsonf") constant(value=",")
  property(name="hostname" format="jsonf" outname="host") constant(value=",")
  property(name="app-name" format="jsonf" outname="app") constant(value=",")
  property(name="procid" format="jsonf") constant(value=",")
  property(name="msgid" format="jsonf") constant(value=",")
  property(name="structured-data" format="jsonf" outname="sd") constant(value=",")
  property(name="msg" format="jsonf")
  constant(value="}\n")
}
`

// RsyslogReceiver starts rsyslogd as the intake's stand-in: syslog over
// TLS (imtcp with the gtls driver) on tlsPort and RELP over TLS (imrelp)
// on relpPort, with the server certificate of certs, writing every message
// it receives to a file that Messages reads. Its RELP input asks senders
// for a certificate signed by certs' CA (librelp's TLS will not do
// without one; use certs' client certificate).
func RsyslogReceiver(t testing.TB, certs *Certs, tlsPort, relpPort int) *Rsyslog {
	t.Helper()
	Require(t, "rsyslogd")
	conf := fmt.Sprintf(`global(
  workDirectory="{{DIR}}"
  maxMessageSize="300k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile=%[1]q
  defaultNetstreamDriverCertFile=%[2]q
  defaultNetstreamDriverKeyFile=%[3]q
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon" maxSessions="100")
module(load="imrelp")
input(type="imtcp" name="syslog-tls" address="127.0.0.1" port="%[4]d" ruleset="received")
input(type="imrelp" name="relp-tls" address="127.0.0.1" port="%[5]d" ruleset="received" maxDataSize="300k"
  tls="on" tls.authMode="certvalid" tls.caCert=%[1]q tls.myCert=%[2]q tls.myPrivKey=%[3]q)
%[6]s
ruleset(name="received") {
  action(type="omfile" file="{{DIR}}/received.jsonl" template="received" flushOnTXEnd="on" asyncWriting="off")
}
`, certs.CA, certs.ServerCert, certs.ServerKey, tlsPort, relpPort, receivedTemplate)
	return StartRsyslog(t, conf, tlsPort, relpPort)
}

// StartRsyslog runs rsyslogd on conf, in which {{DIR}} is its folder, and
// waits until it accepts connections on ports. It is stopped with the test.
func StartRsyslog(t testing.TB, conf string, ports ...int) *Rsyslog {
	t.Helper()
	Require(t, "rsyslogd")
	dir := t.TempDir()
	r := &Rsyslog{t: t, dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), ports: ports}
	if err := os.WriteFile(r.conf, []byte(strings.ReplaceAll(conf, "{{DIR}}", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("rsyslogd said:\n%s", r.Log())
		}
	})
	return r
}

// Start starts rsyslogd (again) and waits until its ports accept.
func (r *Rsyslog) Start() {
	r.t.Helper()
	r.mu.Lock()
	cmd := exec.Command("rsyslogd", "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	if r.log == nil {
		r.log = &bytes.Buffer{}
	}
	cmd.Stdout, cmd.Stderr = &lockedBuffer{mu: &r.mu, b: r.log}, &lockedBuffer{mu: &r.mu, b: r.log}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range r.ports {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				r.t.Fatalf("rsyslogd exited at start:\n%s", r.Log())
			default:
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("rsyslogd does not listen on %d after 20s:\n%s", port, r.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Stop stops rsyslogd with SIGTERM (SIGKILL after 10 s) and waits for it.
func (r *Rsyslog) Stop() { r.signal(syscall.SIGTERM) }

// Kill stops rsyslogd at once, as a crash would: what it held in memory
// is lost.
func (r *Rsyslog) Kill() { r.signal(syscall.SIGKILL) }

func (r *Rsyslog) signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Log is what rsyslogd printed.
func (r *Rsyslog) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// Messages returns what the receiver wrote down so far.
func (r *Rsyslog) Messages() []Received {
	r.t.Helper()
	f, err := os.Open(filepath.Join(r.dir, "received.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	var out []Received
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if m, ok := lastObject(sc.Bytes()); ok {
			out = append(out, m)
		}
	}
	return out
}

// lastObject reads the message a line ends with. A line cut short by a
// kill has the first line of the restarted rsyslogd glued to it, and the
// last line may still be being written: the whole line is tried, then
// each object that starts inside it.
func lastObject(line []byte) (Received, bool) {
	for at := 0; at >= 0 && at < len(line); {
		var m Received
		if json.Unmarshal(line[at:], &m) == nil {
			return m, true
		}
		next := bytes.Index(line[at+1:], []byte(`{"`))
		if next < 0 {
			break
		}
		at += 1 + next
	}
	return Received{}, false
}

// WaitMessages waits until at least n messages arrived, failing the test
// after timeout, and returns them.
func (r *Rsyslog) WaitMessages(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.Messages()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd received %d messages after %s, want %d", len(got), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
