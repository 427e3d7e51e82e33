// Command flowgate is the appliance: it receives flows and logs, buffers
// them durably and ships them to the intake. `flowgate run` runs it,
// `flowgate check` validates a configuration, `flowgate healthcheck` asks a
// running one whether it is ready, `flowgate dlq` lists and sends again the
// events the intake refused, `flowgate route` tries the routes on syslog
// lines, `flowgate version` says which build this is.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/flowgate/flowgate/config"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

// options are the flags of every command; each command defines those it
// takes.
type options struct {
	config   string
	probe    bool
	intake   string
	progress int
	from     string
	// log is run's --log-level and --log-format.
	log config.Log
}

// command is one of flowgate's commands: what its help says, the flags it
// takes and what it does.
type command struct {
	name, args, summary string
	// words says the command takes words after its name (dlq list).
	words bool
	// about says what the command does, for its help.
	about string
	// env are the environment variables it reads (envHelp says what each does).
	env     []string
	example string
	flags   func(*flag.FlagSet, *options)
	// do runs the command on its parsed options and arguments.
	do func(o *options, args []string, stdout, stderr io.Writer) error
}

// configEnv are the variables loading a configuration reads.
var configEnv = []string{"REGION", "ENDPOINT", "DISK_SPACE", "MEMORY_MESSAGES", "RELP_OUTPUT"}

// envHelp says what each environment variable does.
var envHelp = map[string]string{
	"REGION":          "Sekoia.io region to ship to: FRA1 (default), FRA2, MCO1, UAE1, USA1, SGP1, or OTHER with ENDPOINT",
	"ENDPOINT":        "the intake's address with REGION=OTHER: an https:// base URL, or host[:port] for syslog and relp",
	"DISK_SPACE":      "bound of the buffer on disk, e.g. 180g (wins over buffer.disk_space)",
	"MEMORY_MESSAGES": "events held in memory over all intakes (wins over buffer.memory_messages)",
	"RELP_OUTPUT":     "when set, log intakes ship over RELP-TLS (port 11514) instead of syslog-TLS",
	"GOMEMLIMIT":      "Go's soft memory limit, e.g. 2GiB; by default set from MEMORY_MESSAGES",
	"GOGC":            "Go's garbage collector target, in percent of the live heap; 50 by default, up to 200 while the heap is small",
}

func configFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.config, "config", "", "the intakes.yaml `FILE` to use (default: the embedded offline configuration)")
}

// commands are flowgate's commands, in the order the overview lists them.
var commands = []*command{
	{
		name: "run", args: "[--config FILE] [--log-level LEVEL] [--log-format FORMAT]", summary: "run the appliance (the embedded offline default without --config)",
		about: `Runs the appliance: listens on each intake's port, buffers what arrives
and ships it to the intake. Without --config it runs the embedded default:
flows in on UDP 2055 (NetFlow, IPFIX) and 6343 (sFlow), events out to stdout.

SIGTERM and SIGINT stop it (what is in flight is shipped first); SIGHUP
reads the configuration file again.`,
		env:     append(slices.Clone(configEnv), "GOMEMLIMIT", "GOGC"),
		example: "REGION=FRA2 DISK_SPACE=180g flowgate run --config /etc/flowgate/intakes.yaml --log-format json",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.StringVar(&o.log.Level, "log-level", "", "log from `LEVEL` up: "+strings.Join(config.LogLevels, ", ")+" (wins over the file's log.level; default info)")
			fs.StringVar(&o.log.Format, "log-format", "", "log lines as `FORMAT`: "+strings.Join(config.LogFormats, " or ")+" (wins over the file's log.format; default text)")
		},
		do: func(o *options, _ []string, stdout, stderr io.Writer) error {
			if errs := o.log.Validate("--log-level", "--log-format"); len(errs) > 0 {
				return errors.Join(errs...)
			}
			return withConfig(o, func(c *config.Config) error {
				// The flags win over the file.
				c.Log.Level = cmp.Or(o.log.Level, c.Log.Level)
				c.Log.Format = cmp.Or(o.log.Format, c.Log.Format)
				return runAppliance(c, stdout, stderr)
			})
		},
	},
	{
		name: "check", args: "[--config FILE] [--probe]", summary: "validate the configuration, try its ports and TLS files, say what would listen where",
		about: `Validates the configuration as run would, prints each intake and where its
events go, and each intake's routes and drop rules in the order they are
tried; binds each port (and releases it) and reads each TLS file.
A port in use is named with the process holding it. With --probe it also
tries each output: DNS, TCP, TLS and the intake's answer.
It exits 1 when run would not start.`,
		env:     configEnv,
		example: "flowgate check --config /etc/flowgate/intakes.yaml --probe",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.BoolVar(&o.probe, "probe", false, "also try each output: DNS, TCP, TLS and the intake's answer")
		},
		do: func(o *options, _ []string, stdout, _ io.Writer) error {
			return withConfig(o, func(c *config.Config) error {
				if err := check(c, stdout); err != nil || !o.probe {
					return err
				}
				fmt.Fprintln(stdout)
				return probeOutputs(c, stdout)
			})
		},
	},
	{
		name: "healthcheck", args: "[--config FILE]", summary: "exit 0 if the running appliance answers /readyz, else 1",
		about: `Asks the appliance running the configuration for /readyz on its http
listener, and exits 0 only when it answers 200: a container health
check for an image without a shell.`,
		env:     configEnv,
		example: "flowgate healthcheck --config /etc/flowgate/intakes.yaml",
		flags:   configFlag,
		do: func(o *options, _ []string, stdout, _ io.Writer) error {
			return withConfig(o, func(c *config.Config) error { return healthcheck(c.HTTP.Listen, stdout) })
		},
	},
	{
		name: "dlq", args: dlqArgs, words: true, summary: "list the events the intake refused (dlq list), or send them again (dlq resend)",
		about: `dlq list prints the dead letters (events the intake refused alone), one
JSON object a line, intake keys masked; dlq resend sends them to the
intake again, saying how far it is every N events and every 10 seconds,
then the total. Through the running appliance when it runs, else on its
store.`,
		env:     configEnv,
		example: "flowgate dlq resend --config /etc/flowgate/intakes.yaml --intake Firewall",
		flags: func(fs *flag.FlagSet, o *options) {
			configFlag(fs, o)
			fs.StringVar(&o.intake, "intake", "", "only the dead letters of the intake named `NAME` (default: every intake's)")
			fs.IntVar(&o.progress, "progress", defaultResendProgress, "resend: print how far it is every `N` events (and every 10 seconds)")
		},
		do: dlq,
	},
	routeCommand,
	{
		name: "version", summary: "print the version",
		about:   "Prints the version of this build.",
		example: "flowgate version",
		do: func(_ *options, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "flowgate", buildVersion())
			return nil
		},
	},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage is a command line that cannot be understood.
var errUsage = errors.New("usage")

// errHelp is a request for help, answered.
var errHelp = errors.New("help")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		overview(stderr)
		return 2
	}
	var err error
	switch name := args[0]; name {
	case "--version", "-v":
		err = runCommand(commandNamed("version"), args[1:], stdout, stderr)
	case "help", "--help", "-h":
		err = help(args[1:], stdout, stderr)
	default:
		cmd := commandNamed(name)
		if cmd == nil {
			fmt.Fprintf(stderr, "flowgate: unknown command %q\n\n", name)
			overview(stderr)
			return 2
		}
		err = runCommand(cmd, args[1:], stdout, stderr)
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "flowgate:", err)
		return 1
	}
}

func commandNamed(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// runCommand parses a command's flags and runs it. --help (-h) prints its
// help on stdout; a flag it does not take prints its usage on stderr.
func runCommand(cmd *command, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := newFlagSet(cmd, &o)
	// The command's own words (dlq list) come before its flags.
	var words []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		words, args = append(words, args[0]), args[1:]
	}
	fs.SetOutput(stderr)
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		commandHelp(cmd, stdout)
		return errHelp
	case err != nil:
		fmt.Fprintf(stderr, "usage: flowgate %s %s (flowgate help %s says more)\n", cmd.name, cmd.args, cmd.name)
		return errUsage
	}
	words = append(words, fs.Args()...)
	if len(words) > 0 && !cmd.words {
		fmt.Fprintf(stderr, "flowgate %s: unexpected argument %q\n", cmd.name, words[0])
		return errUsage
	}
	return cmd.do(&o, words, stdout, stderr)
}

func newFlagSet(cmd *command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("flowgate "+cmd.name, flag.ContinueOnError)
	// Usage is said by runCommand: help on stdout, a mistake on stderr.
	fs.Usage = func() {}
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	return fs
}

// help answers `flowgate help [COMMAND]`.
func help(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		overview(stdout)
		return nil
	}
	cmd := commandNamed(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "flowgate help: unknown command %q\n\n", args[0])
		overview(stderr)
		return errUsage
	}
	commandHelp(cmd, stdout)
	return nil
}

// overview lists the commands.
func overview(w io.Writer) {
	fmt.Fprint(w, "flowgate: flows and logs in, a durable buffer, the intake out.\n\nUsage: flowgate COMMAND [flags]\n\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	fmt.Fprint(tw, "  help COMMAND\tthe command's flags, the environment it reads and an example\n")
	_ = tw.Flush()
	fmt.Fprintf(w, "\nEnvironment: %s, GOMEMLIMIT, GOGC (flowgate help run says what each does).\n", strings.Join(configEnv, ", "))
}

// commandHelp prints a command's usage, what it does, its flags, the
// environment variables it reads and an example.
func commandHelp(cmd *command, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("flowgate "+cmd.name+" "+cmd.args), cmd.about)
	var o options
	fs := newFlagSet(cmd, &o)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if cmd.flags != nil {
		fmt.Fprintln(w, "\nFlags:")
		fs.VisitAll(func(f *flag.Flag) {
			value, usage := flag.UnquoteUsage(f)
			if value != "" {
				value = " " + value
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, value, usage)
		})
		_ = tw.Flush()
	}
	if len(cmd.env) > 0 {
		fmt.Fprintln(w, "\nEnvironment:")
		for _, name := range cmd.env {
			fmt.Fprintf(tw, "  %s\t%s\n", name, envHelp[name])
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n", cmd.example)
}

// withConfig loads the configuration --config names (the embedded default
// without it) and calls fn.
func withConfig(o *options, fn func(*config.Config) error) error {
	var c *config.Config
	var err error
	if o.config == "" {
		c, err = config.Default(os.LookupEnv)
	} else {
		c, err = config.Load(o.config, os.LookupEnv)
	}
	if err != nil {
		return err
	}
	return fn(c)
}

// buildVersion is the version set at build time, else what the Go build
// recorded (module version or VCS revision).
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel-" + rev[:min(12, len(rev))]
	if dirty {
		v += "-dirty"
	}
	return strings.TrimSpace(v)
}
