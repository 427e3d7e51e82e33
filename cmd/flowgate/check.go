package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
)

// check prints each intake and where its events would go.
func check(c *config.Config, stdout io.Writer) error {
	fmt.Fprintf(stdout, "%s: %d intakes\n", c.Source, len(c.Intakes))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPROTOCOL\tPORT\tINTAKE KEY\tOUTPUT")
	for _, in := range c.Intakes {
		proto, port := in.Protocol, strconv.Itoa(in.Port)
		if in.Stats {
			proto, port = "stats", "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", in.Name, proto, port, config.MaskKey(in.IntakeKey), appliance.DescribeOutput(in.Output))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "buffer: %s, at most %s on disk, %d events in memory\n", appliance.DescribeBuffer(c), c.Buffer.DiskSpace, c.Buffer.MemoryMessages)
	fmt.Fprintf(stdout, "monitoring: http://%s/ (status page) /metrics /healthz /readyz; stalled after %s\n", c.HTTP.Listen, c.HTTP.StallAfter)
	return nil
}
