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
	"github.com/flowgate/flowgate/decoder/syslog"
	pb "github.com/flowgate/flowgate/proto"
	"github.com/flowgate/flowgate/route"
)

// maxDryRunLine bounds a line read by the dry run: the intake's own bound
// on an event.
const maxDryRunLine = 256 << 10

// routeCommand is `flowgate route`: the dry run of an intake's rules.
var routeCommand = &command{
	name: "route", args: "[--config FILE] [--intake NAME] [--from ADDR]", summary: "dry run of the routes: which rule takes each syslog line of stdin, and where it goes",
	about: `Reads syslog lines on standard input, one event a line, parses each as
the intake does, and prints the rule that takes it (or none) and where it
would go: an intake key (masked) or dropped. Nothing is sent or stored:
try a drop rule here before it goes live, dropped events are unrecoverable.
--intake picks the intake (needed when several have routes); --from is the
sender address the source rules see. Ends with a count by rule.`,
	env:     configEnv,
	example: "tail -n 1000 /var/log/firewall.log | flowgate route --config /etc/flowgate/intakes.yaml --intake Shared",
	flags: func(fs *flag.FlagSet, o *options) {
		configFlag(fs, o)
		fs.StringVar(&o.intake, "intake", "", "the intake named `NAME` (default: the one intake with routes)")
		fs.StringVar(&o.from, "from", "127.0.0.1", "the sender `ADDR` the lines are taken to come from")
	},
	do: func(o *options, _ []string, stdout, _ io.Writer) error {
		return withConfig(o, func(c *config.Config) error { return dryRun(c, o.intake, o.from, os.Stdin, stdout) })
	},
}

// dryRun routes each syslog line of r as intake name of c would, printing
// for each the rule that takes it and where it goes, then the counts.
func dryRun(c *config.Config, name, from string, r io.Reader, w io.Writer) error {
	in, err := routedIntake(c, name)
	if err != nil {
		return err
	}
	sender, err := netip.ParseAddr(from)
	if err != nil {
		return fmt.Errorf("--from %q: not an address", from)
	}
	rules := in.Table.Rules()
	counts := make([]int, len(rules)+1)
	sc := bufio.NewScanner(r)
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
	for i, rule := range rules {
		fmt.Fprintf(w, " %s %d,", rule.Name, counts[i+1])
	}
	fmt.Fprintf(w, " no rule %d\n", counts[0])
	return nil
}

// routedIntake is the syslog intake named, or the only one with routes.
func routedIntake(c *config.Config, name string) (*config.Intake, error) {
	var found []*config.Intake
	for i := range c.Intakes {
		in := &c.Intakes[i]
		if (name == "" && in.Table != nil && in.IsLog()) || (name != "" && in.Name == name) {
			found = append(found, in)
		}
	}
	switch {
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("%s: no intake named %q", c.Source, name)
	case len(found) == 0:
		return nil, fmt.Errorf("%s: no intake has routes", c.Source)
	case len(found) > 1:
		var names []string
		for _, in := range found {
			names = append(names, in.Name)
		}
		return nil, fmt.Errorf("%s: several intakes have routes (%s): say which with --intake", c.Source, strings.Join(names, ", "))
	}
	in := found[0]
	if !in.IsLog() {
		return nil, errors.New("intake " + in.Name + " receives flows: the dry run reads syslog lines")
	}
	if in.Table == nil {
		// No rule: everything goes to the intake's key.
		var err []error
		in.Table, err = route.Compile(route.Syslog, nil)
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
