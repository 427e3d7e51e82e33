package peers

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Target is a syslog intake on 127.0.0.1 that a sender connects to.
type Target struct {
	// Port is the intake's port.
	Port int
	// TLS is the TLS version the sender speaks, "1.2" or "1.3", or
	// "any" for the sender's own choice; "" is plain TCP.
	TLS string
	// CA is the file of the CA that signed the intake's certificate for
	// localhost and 127.0.0.1 (Certs.CA): senders verify it.
	CA string
	// ClientCert and ClientKey, when set, are the certificate the Python
	// sender presents (for an intake with tls_client_auth: require).
	ClientCert, ClientKey string
}

// senderTimeout bounds one run of a sender program.
const senderTimeout = 60 * time.Second

// skipUnless skips the test when program is missing, naming the Debian
// package that has it (scripts/test installs them).
func skipUnless(t testing.TB, program, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		t.Skipf("%s is not installed (Debian package %s)", program, pkg)
	}
}

// run runs a sender program with payload on its standard input and
// returns once it has exited, failing the test if it failed or ran past
// senderTimeout.
func run(t testing.TB, payload []byte, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), senderTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(payload)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errors.New("still running after " + senderTimeout.String())
		}
		shown := make([]string, len(args))
		for i, a := range args {
			if shown[i] = a; strings.Contains(a, "\n") {
				shown[i] = "<script>"
			}
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(shown, " "), err, out.String())
	}
}

// PythonEnd is how the Python sender ends its connection.
type PythonEnd string

const (
	// PythonClose closes the socket without reading anything and, over
	// TLS, without a close_notify: what most scripts do.
	PythonClose PythonEnd = "close"
	// PythonUnwrap sends a TLS close_notify and waits for the intake's.
	PythonUnwrap PythonEnd = "unwrap"
	// PythonHalfClose shuts down its side (SHUT_WR, no close_notify) and
	// reads until the intake closes.
	PythonHalfClose PythonEnd = "halfclose"
	// PythonReset waits until the intake's kernel acknowledged every byte,
	// then resets the connection (SO_LINGER 0).
	PythonReset PythonEnd = "reset"
	// PythonSlowHello writes its TLS ClientHello in 32-byte pieces 50 ms
	// apart (about a second), then sends and closes as PythonClose.
	PythonSlowHello PythonEnd = "slowhello"
)

// pythonSender is the Python sender: payload on stdin; port, TLS version,
// end, CA file, client certificate and key as arguments.
const pythonSender = `
import fcntl, socket, ssl, struct, sys, termios, time
port, version, end, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
data = sys.stdin.buffer.read()
raw = socket.create_connection(("127.0.0.1", port), timeout=30)
sock = raw
if version:
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    if version != "any":
        v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version]
        ctx.minimum_version = ctx.maximum_version = v
    if end == "slowhello":
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
        hello = True
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            pending = out.read()
            if hello:
                for i in range(0, len(pending), 32):
                    raw.sendall(pending[i:i + 32])
                    time.sleep(0.05)
                hello = False
            else:
                raw.sendall(pending)
            got = raw.recv(65536)
            if not got:
                sys.exit("the intake closed during the handshake")
            inc.write(got)
        obj.write(data)
        raw.sendall(out.read())
        raw.close()
        sys.exit(0)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
sock.sendall(data)
if end == "close":
    sock.close()
elif end == "unwrap":
    sock.unwrap().close()
elif end == "halfclose":
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):
        pass
    sock.close()
elif end == "reset":
    deadline = time.time() + 20
    while struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0] > 0:
        if time.time() > deadline:
            sys.exit("the intake did not acknowledge everything in 20 s")
        time.sleep(0.01)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
else:
    sys.exit("unknown end " + end)
`

// Python sends payload with Python's socket and ssl modules, ending as
// end says.
func Python(t testing.TB, to Target, end PythonEnd, payload []byte) {
	t.Helper()
	skipUnless(t, "python3", "python3")
	run(t, payload, "python3", "-c", pythonSender, strconv.Itoa(to.Port), to.TLS, string(end), to.CA, to.ClientCert, to.ClientKey)
}

// OpenSSLClient pipes payload into openssl s_client, which closes the
// connection when its input ends.
func OpenSSLClient(t testing.TB, to Target, payload []byte) {
	t.Helper()
	skipUnless(t, "openssl", "openssl")
	args := []string{"s_client", "-connect", "127.0.0.1:" + strconv.Itoa(to.Port), "-servername", "localhost",
		"-CAfile", to.CA, "-verify_return_error", "-verify_hostname", "localhost", "-no_ign_eof", "-nocommands"}
	switch to.TLS {
	case "1.2":
		args = append(args, "-tls1_2")
	case "1.3":
		args = append(args, "-tls1_3")
	}
	run(t, payload, "openssl", args...)
}

// GnuTLSClient pipes payload into gnutls-cli.
func GnuTLSClient(t testing.TB, to Target, payload []byte) {
	t.Helper()
	skipUnless(t, "gnutls-cli", "gnutls-bin")
	args := []string{"--x509cafile", to.CA, "--verify-hostname", "localhost", "--port", strconv.Itoa(to.Port)}
	switch to.TLS {
	case "1.2":
		args = append(args, "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2")
	case "1.3":
		args = append(args, "--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3")
	}
	run(t, payload, "gnutls-cli", append(args, "127.0.0.1")...)
}

// Socat pipes payload into socat's OPENSSL address (TCP when to.TLS is
// empty), one way.
func Socat(t testing.TB, to Target, payload []byte) {
	t.Helper()
	skipUnless(t, "socat", "socat")
	addr := "TCP:127.0.0.1:" + strconv.Itoa(to.Port)
	if to.TLS != "" {
		addr = "OPENSSL:127.0.0.1:" + strconv.Itoa(to.Port) + ",cafile=" + to.CA + ",commonname=localhost"
		if to.TLS != "any" {
			addr += ",min-version=TLS" + to.TLS + ",max-version=TLS" + to.TLS
		}
	}
	run(t, payload, "socat", "-u", "STDIN", addr)
}

// Ncat pipes payload into nmap's ncat (--ssl when to.TLS is set; ncat
// does not choose a TLS version).
func Ncat(t testing.TB, to Target, payload []byte) {
	t.Helper()
	skipUnless(t, "ncat", "ncat")
	args := []string{"--send-only"}
	if to.TLS != "" {
		args = append(args, "--ssl", "--ssl-verify", "--ssl-trustfile", to.CA, "--ssl-servername", "localhost")
	}
	run(t, payload, "ncat", append(args, "127.0.0.1", strconv.Itoa(to.Port))...)
}

// Netcat pipes payload into OpenBSD's nc over plain TCP; it shuts down
// its side when its input ends (-N).
func Netcat(t testing.TB, port int, payload []byte) {
	t.Helper()
	skipUnless(t, "nc.openbsd", "netcat-openbsd")
	run(t, payload, "nc.openbsd", "-N", "127.0.0.1", strconv.Itoa(port))
}
