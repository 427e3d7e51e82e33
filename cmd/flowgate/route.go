package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/decoder/flow"
	"github.com/flowgate/flowgate/decoder/pcap"
	"github.com/flowgate/flowgate/decoder/syslog"
	"github.com/flowgate/flowgate/enrich"
	"github.com/flowgate/flowgate/pipeline"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/route"
)

// maxDryRunLine bounds a line read by the dry run: the intake's own bound
// on an event.
const maxDryRunLine = 256 << 10

// routeCommand is `flowgate route`: the dry run of an intake's rules.
var routeCommand = &command{
	name: "route", args: "[--config FILE] [--intake NAME] [--from ADDR]", summary: "dry run of the routes: which rule takes each syslog line, or each flow of a capture, on stdin, and where it goes",
	about: `Reads syslog lines on standard input, one event a line, parses each as
the intake does, and prints the rule that takes it (or none) and where it
would go: an intake key (masked) or dropped. Given a capture of exports
instead (pcap or pcapng, as tcpdump -w writes it), it decodes the
datagrams sent to a flow intake's port as the intake does (NetFlow v5, v9,
IPFIX, sFlow; templates from the capture), enriches the flows, and prints
the same for each flow. Nothing is sent or stored: try a drop rule here
before it goes live, dropped events are unrecoverable. --intake picks the
intake (needed when several of the input's kind have routes); --from is
the sender address source rules see for syslog lines (a capture says its
own). Ends with a count by rule.`,
	env:     configEnv,
	example: "tail -n 1000 /var/log/firewall.log | flowgate route --config /etc/flowgate/intakes.yaml --intake Shared\n  tcpdump -i eth0 -c 200 -w - udp port 2055 | flowgate route --config /etc/flowgate/intakes.yaml --intake Routers",
	flags: func(fs *flag.FlagSet, o *options) {
		configFlag(fs, o)
		fs.StringVar(&o.intake, "intake", "", "the intake named `NAME` (default: the one intake of the input's kind with routes)")
		fs.StringVar(&o.from, "from", "127.0.0.1", "the sender `ADDR` the lines are taken to come from")
	},
	do: func(o *options, _ []string, stdout, _ io.Writer) error {
		return withConfig(o, func(c *config.Config) error { return dryRun(c, o.intake, o.from, os.Stdin, stdout) })
	},
}

// dryRun routes what r holds as intake name of c would: syslog lines, or
// the flows of a capture. It prints for each event the rule that takes it
// and where it goes, then the counts.
func dryRun(c *config.Config, name, from string, r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	if pcap.Is(head) {
		return flowDryRun(c, name, br, w)
	}
	in, err := routedIntake(c, name, false)
	if err != nil {
		return err
	}
	sender, err := netip.ParseAddr(from)
	if err != nil {
		return fmt.Errorf("--from %q: not an address", from)
	}
	rules := in.Table.Rules()
	counts := make([]int, len(rules)+1)
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), maxDryRunLine)
	var l pb.Log
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		n++
		syslog.Parse(&l, line, time.Now())
		l.Sender = sender.AsSlice()
		i := in.Table.Log(&l)
		counts[i+1]++
		fmt.Fprintf(w, "%d\t%s\t%s\n", n, destination(in, i), shorten(string(line), 100))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d of standard input: %w", n+1, err)
	}
	fmt.Fprintf(w, "%d events:", n)
	printCounts(w, rules, counts)
	return nil
}

// flowDryRun routes the flows of the capture r as flow intake name of c
// would: the datagrams sent to its port, decoded with its protocol and
// enriched as it enriches them.
func flowDryRun(c *config.Config, name string, r io.Reader, w io.Writer) error {
	in, err := routedIntake(c, name, true)
	if err != nil {
		return err
	}
	pr, err := pcap.NewReader(r)
	if err != nil {
		return fmt.Errorf("standard input: %w", err)
	}
	geo, err := enrich.OpenGeo(enrich.GeoConfig{ASNDatabase: c.GeoIP.ASNDatabase, CountryDatabase: c.GeoIP.CountryDatabase}, nil)
	if err != nil {
		return err
	}
	enricher := pipeline.Enricher(*in, geo)
	dec := flow.NewDecoder(flow.NewTemplates())
	decode := dec.Decode
	if in.Kind == config.KindSFlow {
		decode = dec.DecodeSFlow
	}
	rules := in.Table.Rules()
	counts := make([]int, len(rules)+1)
	var batch pb.Batch
	var n, datagrams, elsewhere, refused int
	for {
		d, err := pr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("standard input: %w", err)
		}
		if int(d.To.Port()) != in.Port {
			elsewhere++
			continue
		}
		datagrams++
		batch.Flows, batch.Counters = batch.Flows[:0], batch.Counters[:0]
		exporter := d.From.Addr().Unmap()
		if _, err := decode(d.Payload, exporter, d.At, &batch); err != nil {
			refused++
			fmt.Fprintf(w, "datagram %d from %s refused: %v\n", datagrams, exporter, err)
			continue
		}
		for _, f := range batch.Flows {
			enricher.Flow(f)
			i := in.Table.Flow(f)
			counts[i+1]++
			n++
			fmt.Fprintf(w, "%d\t%s\t%s\n", n, destination(in, i), describeFlow(f))
		}
	}
	fmt.Fprintf(w, "%d flows in %d datagrams to port %d:", n, datagrams, in.Port)
	printCounts(w, rules, counts)
	if refused > 0 {
		fmt.Fprintf(w, "%d datagrams refused\n", refused)
	}
	if elsewhere > 0 {
		fmt.Fprintf(w, "%d datagrams to other ports skipped\n", elsewhere)
	}
	if a := in.Flow.Aggregate; a != nil {
		fmt.Fprintf(w, "the flows left to the intake's own key are then summed by %s over %s\n", strings.Join(a.Keys, ", "), a.Window)
	}
	return nil
}

// printCounts ends the summary line: the events each rule, and none,
// took.
func printCounts(w io.Writer, rules []route.Rule, counts []int) {
	for i, rule := range rules {
		fmt.Fprintf(w, " %s %d,", rule.Name, counts[i+1])
	}
	fmt.Fprintf(w, " no rule %d\n", counts[0])
}

// describeFlow says what a flow is, in the fields rules most often test.
func describeFlow(f *pb.Flow) string {
	addr := func(b []byte, port uint32) string {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return "-" // a sample of a frame that is not IP
		}
		return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
	}
	exp, _ := netip.AddrFromSlice(f.Exporter)
	return fmt.Sprintf("exporter %s %s → %s protocol %d, %d packets, %d bytes",
		exp.Unmap(), addr(f.SrcAddr, f.SrcPort), addr(f.DstAddr, f.DstPort), f.Proto, f.Packets, f.Bytes)
}

// routedIntake is the intake named, or the only one of the kind (flow or
// syslog) with routes, checked to be of that kind.
func routedIntake(c *config.Config, name string, flows bool) (*config.Intake, error) {
	kind := "syslog"
	if flows {
		kind = "flow"
	}
	var found []*config.Intake
	for i := range c.Intakes {
		in := &c.Intakes[i]
		if (name == "" && in.Table != nil && in.Kind.IsFlow() == flows) || (name != "" && in.Name == name) {
			found = append(found, in)
		}
	}
	switch {
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("%s: no intake named %q", c.Source, name)
	case len(found) == 0:
		return nil, fmt.Errorf("%s: no %s intake has routes", c.Source, kind)
	case len(found) > 1:
		var names []string
		for _, in := range found {
			names = append(names, in.Name)
		}
		return nil, fmt.Errorf("%s: several %s intakes have routes (%s): say which with --intake", c.Source, kind, strings.Join(names, ", "))
	}
	in := found[0]
	switch {
	case flows && !in.Kind.IsFlow():
		return nil, errors.New("intake " + in.Name + " receives " + string(in.Kind) + ", not flows: give it syslog lines, not a capture")
	case !flows && in.Kind.IsFlow():
		return nil, errors.New("intake " + in.Name + " receives flows: give it a capture of its exports (pcap or pcapng), not lines")
	case !flows && !in.Kind.IsLog():
		return nil, errors.New("intake " + in.Name + " has no routes to try")
	}
	if in.Table == nil {
		// No rule: everything goes to the intake's key.
		k := route.Syslog
		if flows {
			k = route.Flow
		}
		var err []error
		in.Table, err = route.Compile(k, nil)
		if len(err) > 0 {
			return nil, errors.Join(err...)
		}
	}
	return in, nil
}

// destination says what rule i (route.None: none) of in does with an
// event.
func destination(in *config.Intake, i int) string {
	if i == route.None {
		if in.IntakeKey == "" {
			return "(no rule)\tdropped: the intake has no intake_key"
		}
		return "(no rule)\t→ " + config.MaskKey(in.IntakeKey)
	}
	r := in.Table.Rules()[i]
	if r.Drop {
		return r.Name + "\tdropped"
	}
	return r.Name + "\t→ " + config.MaskKey(r.IntakeKey)
}

// shorten cuts s to n runes, marking the cut.
func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
