package enrich

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/flowgate/flowgate/enrich/enrichtest"
	pb "github.com/flowgate/flowgate/proto"
)

// testGeo writes an ASN and a Country database and opens them.
func testGeo(t testing.TB) (*Geo, GeoConfig) {
	t.Helper()
	dir := t.TempDir()
	cfg := GeoConfig{ASNDatabase: filepath.Join(dir, "asn.mmdb"), CountryDatabase: filepath.Join(dir, "country.mmdb")}
	enrichtest.WriteDB(t, cfg.ASNDatabase, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"192.0.2.0/24": enrichtest.ASN(64500, "Example Transit"), "198.51.100.0/24": enrichtest.ASN(64501, "Example Hosting"),
		"2001:db8::/32": enrichtest.ASN(64502, "Example Six"),
	})
	enrichtest.WriteDB(t, cfg.CountryDatabase, "DBIP-Country-Lite", map[string]mmdbtype.Map{
		"192.0.2.0/24": enrichtest.Country("FR"), "198.51.100.0/24": enrichtest.Country("DE"), "2001:db8::/32": enrichtest.Country("JP"),
	})
	g, err := OpenGeo(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g, cfg
}

func TestGeoFlow(t *testing.T) {
	g, _ := testGeo(t)
	// No AS numbers sent: both from the database.
	f := &pb.Flow{SrcAddr: []byte{192, 0, 2, 7}, DstAddr: []byte{198, 51, 100, 9}}
	g.Flow(f)
	if f.SrcAs != 64500 || f.DstAs != 64501 || f.Present&(srcASBit|dstASBit) != srcASBit|dstASBit ||
		f.Geo.GetSrcAsOrg() != "Example Transit" || f.Geo.GetDstAsOrg() != "Example Hosting" || f.Geo.GetSrcCountry() != "FR" || f.Geo.GetDstCountry() != "DE" {
		t.Errorf("got %+v", f)
	}
	// The exporter's numbers win; an organisation only goes with the
	// number the database gives too. An unknown address gets nothing.
	f = &pb.Flow{SrcAddr: []byte{192, 0, 2, 7}, DstAddr: []byte{203, 0, 113, 1}, SrcAs: 65000, DstAs: 0, Present: srcASBit | dstASBit}
	g.Flow(f)
	if f.SrcAs != 65000 || f.Geo.GetSrcAsOrg() != "" || f.DstAs != 0 || f.Geo.GetDstAsOrg() != "" || f.Geo.GetSrcCountry() != "FR" || f.Geo.GetDstCountry() != "" {
		t.Errorf("got %+v", f)
	}
	f = &pb.Flow{SrcAddr: []byte{198, 51, 100, 1}, SrcAs: 64501, Present: srcASBit,
		DstAddr: []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}}
	g.Flow(f)
	if f.Geo.GetSrcAsOrg() != "Example Hosting" || f.DstAs != 64502 || f.Geo.GetDstCountry() != "JP" {
		t.Errorf("got %+v", f)
	}
	// No databases: nothing, and no panic.
	var none *Geo
	none.Flow(f)
}

func TestOpenGeoRefuses(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	if err := os.WriteFile(corrupt, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	asnDB := filepath.Join(dir, "asn.mmdb")
	enrichtest.WriteDB(t, asnDB, "GeoLite2-ASN", map[string]mmdbtype.Map{"192.0.2.0/24": enrichtest.ASN(1, "x")})
	for _, c := range []struct {
		cfg  GeoConfig
		want string
	}{
		{GeoConfig{ASNDatabase: filepath.Join(dir, "missing.mmdb")}, "missing.mmdb"},
		{GeoConfig{CountryDatabase: corrupt}, "corrupt.mmdb"},
		{GeoConfig{CountryDatabase: asnDB}, `it is a "GeoLite2-ASN" database`},
	} {
		g, err := OpenGeo(c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, %v; want an error naming %s", c.cfg, g, err, c.want)
		}
	}
	if g, err := OpenGeo(GeoConfig{}, nil); g != nil || err != nil {
		t.Errorf("no databases: %v, %v", g, err)
	}
}

func TestGeoReload(t *testing.T) {
	g, cfg := testGeo(t)
	src := []byte{192, 0, 2, 7}
	srcCountry := func() string { f := &pb.Flow{SrcAddr: src}; g.Flow(f); return f.Geo.GetSrcCountry() }
	// Unchanged files: nothing reopened.
	before := g.dbs.Load()
	if err := g.Reload(); err != nil || g.dbs.Load() != before {
		t.Fatalf("reload of unchanged files: %v, replaced %v", err, g.dbs.Load() != before)
	}
	enrichtest.WriteDB(t, cfg.CountryDatabase, "GeoLite2-Country", map[string]mmdbtype.Map{"192.0.2.0/24": enrichtest.Country("BE")})
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := srcCountry(); got != "BE" {
		t.Fatalf("after reload: %q, want BE", got)
	}
	if g.dbs.Load().asn != before.asn {
		t.Error("the unchanged ASN database was reopened")
	}
	// A corrupt replacement (put in place by renaming, as database
	// updaters do): an error naming it, the previous one kept.
	if err := os.WriteFile(cfg.CountryDatabase+".tmp", []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cfg.CountryDatabase+".tmp", cfg.CountryDatabase); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err == nil || !strings.Contains(err.Error(), "country.mmdb") {
		t.Errorf("corrupt file: %v", err)
	}
	if got := srcCountry(); got != "BE" {
		t.Errorf("after a failed reload: %q, want BE", got)
	}
}

// BenchmarkGeoFlow is the cost of the ASN and country lookups of one
// flow's two addresses.
func BenchmarkGeoFlow(b *testing.B) {
	g, _ := testGeo(b)
	f := &pb.Flow{}
	src, dst := []byte{192, 0, 2, 7}, []byte{198, 51, 100, 9}
	b.ReportAllocs()
	for b.Loop() {
		f.SrcAddr, f.DstAddr, f.Present = src, dst, 0
		g.Flow(f)
	}
}

// BenchmarkGeoFlowSpread is BenchmarkGeoFlow over databases of 4096
// networks (sharing 64 ASN and 8 country records, as real files share
// them) with every flow from another address: each lookup walks the tree
// cold, as the benchmark harness's -enrich traffic does.
func BenchmarkGeoFlowSpread(b *testing.B) {
	dir := b.TempDir()
	cfg := GeoConfig{ASNDatabase: filepath.Join(dir, "asn.mmdb"), CountryDatabase: filepath.Join(dir, "country.mmdb")}
	asn, country := map[string]mmdbtype.Map{}, map[string]mmdbtype.Map{}
	codes := []string{"FR", "DE", "US", "GB", "NL", "ES", "IT", "JP"}
	for i := range 4096 {
		cidr := fmt.Sprintf("10.%d.%d.0/20", i>>4, i&15<<4)
		asn[cidr] = enrichtest.ASN(uint32(64512+i%64), fmt.Sprintf("AS %d", i%64))
		country[cidr] = enrichtest.Country(codes[i%len(codes)])
	}
	enrichtest.WriteDB(b, cfg.ASNDatabase, "GeoLite2-ASN", asn)
	enrichtest.WriteDB(b, cfg.CountryDatabase, "GeoLite2-Country", country)
	g, err := OpenGeo(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &pb.Flow{}
	src, dst := []byte{10, 0, 0, 0}, []byte{10, 200, 0, 1}
	b.ReportAllocs()
	seq := uint32(0)
	for b.Loop() {
		seq += 4099 // a prime step: every /20 in turn, a new address each time
		binary.BigEndian.PutUint32(src, 10<<24|seq&(1<<24-1))
		f.SrcAddr, f.DstAddr, f.Present, f.SrcAs, f.DstAs = src, dst, 0, 0, 0
		g.Flow(f)
	}
}

// TestGeoWatch replaces a database while Watch runs: lookups turn to the
// new file without a restart.
func TestGeoWatch(t *testing.T) {
	g, cfg := testGeo(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Watch(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	enrichtest.WriteDB(t, cfg.ASNDatabase, "GeoLite2-ASN", map[string]mmdbtype.Map{"192.0.2.0/24": enrichtest.ASN(64999, "Renumbered")})
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := &pb.Flow{SrcAddr: []byte{192, 0, 2, 7}}
		g.Flow(f)
		if f.SrcAs == 64999 && f.Geo.GetSrcAsOrg() == "Renumbered" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new database was not picked up: %+v", f)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
