package peers

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gnutlsPriority is the GnuTLS priority string that speaks only version v
// ("1.2", "1.3"); "" for any other v.
func gnutlsPriority(v string) string {
	switch v {
	case "1.2", "1.3":
		return "NORMAL:-VERS-ALL:+VERS-TLS" + v
	}
	return ""
}

// RsyslogForwarder starts Debian's rsyslogd as a relay: what it receives
// over plain TCP on 127.0.0.1:inPort (imtcp) it forwards to the intake
// with omfwd, octet-counted RFC 5424 over TLS (the gtls driver, the
// intake's certificate checked against to.CA for the name localhost), in
// to.TLS's version. It is stopped with the test.
func RsyslogForwarder(t testing.TB, inPort int, to Target) *Rsyslog {
	t.Helper()
	skipUnless(t, "rsyslogd", "rsyslog")
	priority := ""
	if p := gnutlsPriority(to.TLS); p != "" {
		priority = fmt.Sprintf(" gnutlsPriorityString=%q", p)
	}
	conf := fmt.Sprintf(`global(workDirectory="{{DIR}}" defaultNetstreamDriverCAFile=%[1]q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%[2]d" ruleset="forward")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="%[3]d" protocol="tcp" TCP_Framing="octet-counted"
    template="RSYSLOG_SyslogProtocol23Format" StreamDriver="gtls" StreamDriverMode="1"
    StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"%[4]s)
}
`, to.CA, inPort, to.Port, priority)
	return StartRsyslog(t, conf, inPort)
}

// SyslogNG is a running syslog-ng.
type SyslogNG struct {
	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
	once sync.Once
}

// syslogNGRoot is where scripts/test unpacks Debian's syslog-ng-core when
// it cannot be installed: it conflicts with rsyslog, which other tests
// need.
const syslogNGRoot = "/opt/syslog-ng-core"

// SyslogNGForwarder starts syslog-ng as a relay: what it receives over
// plain TCP on 127.0.0.1:inPort (RFC 3164, one message a line) it forwards
// to the intake with network(transport("tls")), the intake's certificate
// checked against to.CA, in to.TLS's version. It is stopped with the test.
func SyslogNGForwarder(t testing.TB, inPort int, to Target) *SyslogNG {
	t.Helper()
	bin, extra, env := "syslog-ng", []string(nil), os.Environ()
	if _, err := exec.LookPath(bin); err != nil {
		bin = filepath.Join(syslogNGRoot, "usr/sbin/syslog-ng")
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("syslog-ng is not installed (Debian package syslog-ng-core, which conflicts with rsyslog: scripts/test unpacks it into %s)", syslogNGRoot)
		}
		modules, _ := filepath.Glob(filepath.Join(syslogNGRoot, "usr/lib/syslog-ng/3.*"))
		if len(modules) != 1 {
			t.Fatalf("syslog-ng's modules in %s: found %v, want one folder", syslogNGRoot, modules)
		}
		extra = []string{"--module-path=" + modules[0]}
		env = append(env, "LD_LIBRARY_PATH="+filepath.Join(syslogNGRoot, "usr/lib/syslog-ng"))
	}
	options := ""
	switch to.TLS {
	case "1.2":
		options = " ssl-options(no-sslv2, no-sslv3, no-tlsv1, no-tlsv11, no-tlsv13)"
	case "1.3":
		options = " ssl-options(no-sslv2, no-sslv3, no-tlsv1, no-tlsv11, no-tlsv12)"
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`@version: 3.38
options { stats_freq(0); };
source s { network(ip("127.0.0.1") port(%d) transport("tcp")); };
destination d { network("127.0.0.1" port(%d) transport("tls") tls(ca-file(%q) peer-verify(required-trusted)%s)); };
log { source(s); destination(d); };
`, inPort, to.Port, to.CA, options)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &SyslogNG{t: t, done: make(chan struct{}), out: &lockedBuffer{mu: &sync.Mutex{}, b: &bytes.Buffer{}}}
	s.cmd = exec.Command(bin, append(extra, "-F", "--no-caps", "-f", conf, "-R", filepath.Join(dir, "persist"),
		"-p", filepath.Join(dir, "pid"), "-c", filepath.Join(dir, "ctl"))...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("syslog-ng said:\n%s", s.Log())
		}
	})
	if err := waitListening(inPort, s.done, 20*time.Second); err != nil {
		t.Fatalf("syslog-ng: %v:\n%s", err, s.Log())
	}
	return s
}

// Stop stops syslog-ng with SIGTERM (SIGKILL after 10 s) and waits for it.
func (s *SyslogNG) Stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Log is what syslog-ng printed.
func (s *SyslogNG) Log() string {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.b.String()
}

// waitListening waits until 127.0.0.1:port accepts connections, or done
// closes (the program exited), or timeout passes.
func waitListening(port int, done <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited before listening on %d", port)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %d after %s", port, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
