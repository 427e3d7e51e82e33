package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/tlsfiles"
)

// check prints each intake and where its events would go, then tries what
// the start would do first (checkStart).
func check(c *config.Config, stdout io.Writer) error {
	fmt.Fprintf(stdout, "%s: %d intakes\n", c.Source, len(c.Intakes))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPROTOCOL\tPORT\tINTAKE KEY\tOUTPUT")
	for _, in := range c.Intakes {
		proto, port := string(in.Kind), strconv.Itoa(in.Port)
		if in.Kind == config.KindStats {
			port = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", in.Name, proto, port, in.MaskedKeys(), appliance.DescribeOutputs(in))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printRoutes(c, stdout)
	fmt.Fprintf(stdout, "buffer: %s, at most %s on disk, %d events in memory\n", appliance.DescribeBuffer(c), c.Buffer.DiskSpace, c.Buffer.MemoryMessages)
	fmt.Fprintf(stdout, "monitoring: http://%s/ (status page) /metrics /healthz /readyz; stalled after %s\n", c.HTTP.Listen, c.HTTP.StallAfter)
	return checkStart(c, stdout)
}

// checkStart tries what a start does first and can fail on: it binds each
// intake's port (and releases it at once) and reads each TLS file, as run
// would. It prints what went well and returns what would stop the start.
func checkStart(c *config.Config, stdout io.Writer) error {
	var errs []error
	bound, tlsFiles := 0, 0
	outputsRead := map[string]bool{}
	for _, in := range c.Intakes {
		where := fmt.Sprintf("line %d: intake %q", in.Line, in.Name)
		if network := in.Kind.Network(); network != "" {
			note, err := tryPort(network, in.Port)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			case note != "":
				fmt.Fprintf(stdout, "%s: %s\n", where, note)
			default:
				bound++
			}
		}
		if t := in.TLS; t != nil {
			require := t.RequireClientCert()
			if _, err := tlsfiles.NewServer(t.CertFile, t.KeyFile, t.CAFile, require); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
			}
			tlsFiles += 2
			if require {
				tlsFiles++
			}
		}
		// An output's files are read once, and said with the first
		// intake that ships to it.
		for j := range in.Outputs {
			o := &in.Outputs[j]
			id := o.CAFile + "\x00" + o.CertFile + "\x00" + o.KeyFile
			if outputsRead[id] {
				continue
			}
			outputsRead[id] = true
			if o.CAFile != "" {
				// The error names the file.
				if _, err := tlsfiles.NewClient("", o.CAFile, "", ""); err != nil {
					errs = append(errs, fmt.Errorf("%s: output: %w", where, err))
				}
				tlsFiles++
			}
			if o.CertFile != "" {
				if _, err := tlsfiles.NewClient("", "", o.CertFile, o.KeyFile); err != nil {
					errs = append(errs, fmt.Errorf("%s: output: cert_file %s and key_file %s: %w", where, o.CertFile, o.KeyFile, err))
				}
				tlsFiles += 2
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", c.Source, errors.Join(errs...))
	}
	fmt.Fprintf(stdout, "ports: %d free (bound and released); TLS files: %d read\n", bound, tlsFiles)
	return nil
}

// tryPort binds port as the intake would (every address) and releases it.
// A port in use is an error naming its holder when /proc tells; a port
// held by flowgate itself (check before a reload) or one this user may
// not bind (below 1024 without CAP_NET_BIND_SERVICE, which the service
// has) is a note.
func tryPort(network string, port int) (note string, err error) {
	addr := ":" + strconv.Itoa(port)
	var closer io.Closer
	if network == "tcp" {
		closer, err = net.Listen(network, addr)
	} else {
		closer, err = net.ListenPacket(network, addr)
	}
	proto := strings.ToUpper(network)
	switch {
	case err == nil:
		closer.Close()
		return "", nil
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("%s port %d not tried: this user may not bind it (the service may, with CAP_NET_BIND_SERVICE)", proto, port), nil
	case !errors.Is(err, syscall.EADDRINUSE):
		return "", fmt.Errorf("%s port %d: %w", proto, port, err)
	}
	holders, hidden := portHolders(network, port)
	for _, h := range holders {
		if h.comm == "flowgate" {
			return fmt.Sprintf("%s port %d is held by flowgate (pid %d): the running appliance, which a reload keeps listening", proto, port, h.pid), nil
		}
	}
	switch {
	case len(holders) > 0:
		var names []string
		for _, h := range holders {
			names = append(names, fmt.Sprintf("%s (pid %d)", h.comm, h.pid))
		}
		return "", fmt.Errorf("%s port %d is in use by %s", proto, port, strings.Join(names, ", "))
	case hidden:
		return "", fmt.Errorf("%s port %d is in use, by a process this user may not see (run check as root to know which)", proto, port)
	default:
		return "", fmt.Errorf("%s port %d is in use", proto, port)
	}
}

// portHolder is a process with a socket on a port.
type portHolder struct {
	pid  int
	comm string
}

// portHolders finds the processes with a socket bound to port: the
// socket's inode in /proc/net/{tcp,udp}{,6} (listening sockets only for
// tcp), then the process whose /proc/PID/fd links to it. hidden says some
// processes' descriptors could not be read, so the holder may be one.
func portHolders(network string, port int) (holders []portHolder, hidden bool) {
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/" + network, "/proc/net/" + network + "6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ... uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || int(p) != port || (network == "tcp" && f[3] != tcpListen) {
				continue
			}
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return nil, false
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			hidden = hidden || errors.Is(err, fs.ErrPermission)
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil || !inodes[target] {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
			holders = append(holders, portHolder{pid, strings.TrimSpace(string(comm))})
			break
		}
	}
	return holders, hidden
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// printRoutes prints each intake's rules in the order they are tried,
// where what none takes goes, and how its flows are aggregated.
func printRoutes(c *config.Config, stdout io.Writer) {
	for _, in := range c.Intakes {
		if in.Flow != nil && in.Flow.Aggregate != nil {
			a := in.Flow.Aggregate
			fmt.Fprintf(stdout, "intake %q sums its flows over %s by %s\n", in.Name, a.Window, strings.Join(a.Keys, ", "))
		}
		if in.Table == nil {
			continue
		}
		rest := "dropped (no intake_key)"
		if in.IntakeKey != "" {
			rest = "→ " + config.MaskKey(in.IntakeKey)
		}
		fmt.Fprintf(stdout, "routes of intake %q, first match wins; what none takes: %s\n", in.Name, rest)
		for i, r := range in.Table.Rules() {
			fmt.Fprintf(stdout, "  %d. %s (line %d)\n", i+1, r.Describe(config.MaskKey), r.Line)
		}
	}
}
