package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/flowgate/flowgate/appliance"
	"github.com/flowgate/flowgate/config"
	"github.com/flowgate/flowgate/enrich/enrichtest"
	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
	"github.com/flowgate/flowgate/internal/testtraffic"
)

// With geoip databases configured, the flows the intake receives carry
// the AS number, AS organisation and country of their destination
// (192.0.2.1 in the test traffic), and nothing for an address the
// databases do not know (the 10/8 sources).
func TestGeoIPEnrichesFlows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	asnDB, countryDB := filepath.Join(dir, "asn.mmdb"), filepath.Join(dir, "country.mmdb")
	enrichtest.WriteDB(t, asnDB, "GeoLite2-ASN", map[string]mmdbtype.Map{"192.0.2.0/24": enrichtest.ASN(64500, "Example Transit")})
	enrichtest.WriteDB(t, countryDB, "DBIP-Country-Lite", map[string]mmdbtype.Map{"192.0.2.0/24": enrichtest.Country("FR")})
	intake := intaketest.NewHTTPS(t)
	port := apptest.FreePort(t, "udp")
	newApp(t, fmt.Sprintf("geoip:\n  asn_database: %s\n  country_database: %s\nintakes:\n", asnDB, countryDB)+netflowIntake("Routers", port, testKey, intake))

	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(testtraffic.NetFlowV5(nil, []uint32{1, 2, 3}, 0, time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, e := range intake.WaitEvents(t, 3, 30*time.Second) {
		var f map[string]any
		if err := json.Unmarshal([]byte(e.Event), &f); err != nil {
			t.Fatalf("event %q: %v", e.Event, err)
		}
		if f["destinationCountry"] != "FR" || f["bgpDestinationAsNumber"] != float64(64500) || f["destinationAsOrganization"] != "Example Transit" {
			t.Errorf("destination not enriched: %s", e.Event)
		}
		if _, ok := f["sourceCountry"]; ok {
			t.Errorf("a source the databases do not know got a country: %s", e.Event)
		}
	}
}

// A geoip database that cannot be read stops the start, naming the file.
func TestGeoIPMissingDatabaseRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.mmdb")
	path := apptest.WriteConfig(t, dir, fmt.Sprintf("geoip:\n  asn_database: %s\nintakes:\n", missing)+netflowIntake("Routers", apptest.FreePort(t, "udp"), testKey, intaketest.NewHTTPS(t)), "127.0.0.1:0")
	c, err := config.Load(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := appliance.New(context.Background(), c, appliance.Options{Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if a != nil {
		t.Fatal("the appliance was made")
	}
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("start with a missing database: %v, want an error naming %s", err, missing)
	}
}
