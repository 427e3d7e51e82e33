package pipeline

import (
	"strings"
	"testing"
)

// An intake's debug line is one line whatever the frame holds, with the
// masked key.
func TestInputDebugLine(t *testing.T) {
	var out strings.Builder
	debug := inputDebug(&out, "Test****ey")
	debug([]byte("<13>1 - h a - - - signed\nsecond\r line \x1b[31m\x7f"))
	debug([]byte("plain \\ é"))
	want := "[Input \"Test****ey\"] <13>1 - h a - - - signed\\nsecond\\r line \\x1b[31m\\x7f\n" +
		"[Input \"Test****ey\"] plain \\ é\n"
	if out.String() != want {
		t.Fatalf("debug lines %q, want %q", out.String(), want)
	}
}
