package file

import (
	"io"

	"github.com/flowgate/flowgate/config"
)

// Open makes the transport of a file output; the path "-" is stdout, a
// writer shared with the debug lines, which serialises whole lines.
func Open(o *config.Output, stdout io.Writer) (*Transport, error) {
	if o.Path == "-" {
		return NewWriter(stdout, "stdout"), nil
	}
	return New(o.Path)
}
