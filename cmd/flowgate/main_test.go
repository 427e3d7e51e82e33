package main

import (
	"os"
	"testing"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/peers"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// TestMain runs up to 6 tests at once: most wait on a flowgate process
// (its start, a stop's grace, a watchdog's pings) more than they use the
// CPU.
func TestMain(m *testing.M) { os.Exit(apptest.RunParallel(m, 6)) }

// The helpers routes_test.go shares with appliance's end-to-end tests, by
// the names it knows them.
var (
	writeCapture = testtraffic.WriteCapture
	atoi         = peers.Atoi
	flowKey      = testtraffic.FlowKey
	num          = intaketest.Num
)
