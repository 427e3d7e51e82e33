// Command compare puts the headline figures of two benchmark reports side
// by side: the best rate of each tool and path, its CPU per event, memory
// and latency, the ratios against the peers, and how far the second run
// lands from the first. Two runs of the same code on the same machine
// should agree within the tolerance; a figure further apart is not told
// apart when the two runs' repeats of it overlap (a run cannot repeat a
// figure closer than its own repeats do), and latency is held to its
// target in both. It says when the runs' machines differ (then nothing
// is a repeat), counts flowgate's own figures apart from the peers' and
// the ratios against them, and exits 1 when any figure is apart.
//
//	go -C benchmarks run ./cmd/compare results/A.md results/B.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/flowgate/flowgate/benchmarks/internal/report"
)

func main() {
	tolerance := flag.Float64("tolerance", 0.10, "how far apart two figures may be, as a fraction of the first run's")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: compare [-tolerance 0.10] first.md second.md\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	apart, err := compare(flag.Arg(0), flag.Arg(1), *tolerance)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	if apart > 0 {
		fmt.Fprintf(os.Stderr, "compare: %d figures apart: further than %.0f%% with repeats that do not overlap, beyond their bound, or in one run only\n", apart, 100**tolerance)
		os.Exit(1)
	}
}

func compare(first, second string, tolerance float64) (int, error) {
	var runs [2]*report.Run
	for i, name := range []string{first, second} {
		f, err := os.Open(name)
		if err != nil {
			return 0, err
		}
		runs[i], err = report.ReadMarkdown(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return report.WriteComparison(os.Stdout, runs[0], runs[1], tolerance)
}
