package main

import (
	"os"
	"testing"

	"github.com/flowgate/flowgate/internal/apptest"
)

// TestMain runs up to 6 tests at once: most wait on a flowgate process
// (its start, a stop's grace, a watchdog's pings) more than they use the
// CPU.
func TestMain(m *testing.M) { os.Exit(apptest.RunParallel(m, 6)) }
