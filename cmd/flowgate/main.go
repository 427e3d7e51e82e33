// Command flowgate is the appliance: it receives flows and logs, buffers
// them durably and ships them to the intake. `flowgate run` runs it,
// `flowgate check` validates a configuration, `flowgate healthcheck` asks a
// running one whether it is ready, `flowgate dlq` lists and sends again the
// events the intake refused, `flowgate version` says which build this is.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/flowgate/flowgate/config"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

const usage = `flowgate: flows and logs in, a durable buffer, the intake out.

Usage:
  flowgate run         [--config FILE]   run the appliance (the embedded offline default without --config)
  flowgate check       [--config FILE]   validate the configuration and print what would listen where
  flowgate check --probe [--config FILE]
                                         also try each output: DNS, TCP, TLS and the intake's answer
  flowgate healthcheck [--config FILE]   exit 0 if the appliance running FILE answers /readyz, else 1
  flowgate dlq list|resend [--config FILE] [--intake NAME]
                                         print the events the intake refused, or send them again
  flowgate version                       print the version

Signals to run: SIGTERM and SIGINT stop it (what is in flight is shipped
first), SIGHUP reads the configuration file again.

Environment: REGION, ENDPOINT, DISK_SPACE, MEMORY_MESSAGES, GOMEMLIMIT (see README).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage is a command line that cannot be understood.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = withConfig(cmd, rest, stderr, nil, func(c *config.Config) error { return runAppliance(c, stdout, stderr) })
	case "check":
		probe := false
		rest = slices.DeleteFunc(slices.Clone(rest), func(a string) bool {
			isProbe := a == "--probe" || a == "-probe"
			probe = probe || isProbe
			return isProbe
		})
		err = withConfig(cmd, rest, stderr, nil, func(c *config.Config) error {
			if err := check(c, stdout); err != nil || !probe {
				return err
			}
			fmt.Fprintln(stdout)
			return probeOutputs(c, stdout)
		})
	case "healthcheck":
		err = withConfig(cmd, rest, stderr, nil, func(c *config.Config) error { return healthcheck(c.HTTP.Listen, stdout) })
	case "dlq":
		err = dlq(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "flowgate", buildVersion())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "flowgate: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "flowgate:", err)
		return 1
	}
}

// withConfig parses a command's flags (--config, and those flags adds),
// loads the configuration and calls fn.
func withConfig(cmd string, args []string, stderr io.Writer, flags func(*flag.FlagSet), fn func(*config.Config) error) error {
	fs := flag.NewFlagSet("flowgate "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "intakes.yaml to use (default: the embedded offline configuration)")
	if flags != nil {
		flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flowgate %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return errUsage
	}
	var c *config.Config
	var err error
	if *path == "" {
		c, err = config.Default(os.LookupEnv)
	} else {
		c, err = config.Load(*path, os.LookupEnv)
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
