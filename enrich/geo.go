package enrich

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	pb "github.com/flowgate/flowgate/proto"
)

// GeoConfig names the MaxMind-format databases (GeoLite2 or DB-IP Lite
// ASN and Country files) of the appliance; an empty path: none. In
// intakes.yaml: geoip: {asn_database: PATH, country_database: PATH}.
type GeoConfig struct {
	ASNDatabase     string
	CountryDatabase string
}

// Geo adds AS numbers, AS organisations and countries to flows from
// MaxMind-format databases. Databases are memory-mapped and replaced when
// their files change (Reload, Watch); lookups never wait for a reload.
type Geo struct {
	cfg GeoConfig
	log *slog.Logger
	// dbs is replaced on each reload; Flow only loads it.
	dbs atomic.Pointer[geoDBs]
}

type geoDBs struct {
	asn, country *geoDB
}

// geoDB is one open database.
type geoDB struct {
	path  string
	r     *maxminddb.Reader
	stamp fileStamp
	// records are the decoded data records by offset: many networks share
	// one record, so a flow's lookup decodes nothing once its record has
	// been seen. Bounded by maxGeoRecords.
	records sync.Map
	count   atomic.Int64
}

// fileStamp tells a file's versions apart.
type fileStamp struct {
	size    int64
	modTime time.Time
}

const (
	// maxGeoRecords bounds the decoded records kept per database (an ASN
	// database holds about 100k).
	maxGeoRecords = 1 << 18
	// oldReaderGrace is how long a replaced database stays mapped: flows
	// being enriched when it was replaced may still read it.
	oldReaderGrace = time.Minute
)

// asRecord is a record of an ASN database.
type asRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// countryRecord is the part of a Country (or City) record read.
type countryRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

// OpenGeo opens the databases cfg names; a missing, unreadable or corrupt
// file, or one of another kind (an ASN database given as the country
// one), is an error naming it. With no database configured it returns
// nil, nil: a nil *Geo enriches nothing.
func OpenGeo(cfg GeoConfig, log *slog.Logger) (*Geo, error) {
	if cfg.ASNDatabase == "" && cfg.CountryDatabase == "" {
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	g := &Geo{cfg: cfg, log: log}
	dbs, err := g.open(nil)
	if err != nil {
		return nil, err
	}
	g.dbs.Store(dbs)
	return g, nil
}

// open opens the configured databases, reusing those of old whose files
// have not changed.
func (g *Geo) open(old *geoDBs) (*geoDBs, error) {
	var prev geoDBs
	if old != nil {
		prev = *old
	}
	asn, err := openGeoDB(g.cfg.ASNDatabase, "ASN", prev.asn)
	if err != nil {
		return nil, err
	}
	country, err := openGeoDB(g.cfg.CountryDatabase, "Country", prev.country)
	if err != nil {
		if asn != prev.asn {
			asn.r.Close()
		}
		return nil, err
	}
	return &geoDBs{asn: asn, country: country}, nil
}

// openGeoDB opens the database at path, which must be of kind (its type
// names it; City databases serve as Country ones); it returns prev when
// the file is prev's.
func openGeoDB(path, kind string, prev *geoDB) (*geoDB, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geoip %s database: %w", kind, err)
	}
	stamp := fileStamp{fi.Size(), fi.ModTime()}
	if prev != nil && prev.path == path && prev.stamp == stamp {
		return prev, nil
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geoip %s database %s: %w", kind, path, err)
	}
	t := r.Metadata.DatabaseType
	if !strings.Contains(t, kind) && !(kind == "Country" && strings.Contains(t, "City")) {
		r.Close()
		return nil, fmt.Errorf("geoip %s database %s: it is a %q database", kind, path, t)
	}
	return &geoDB{path: path, r: r, stamp: stamp}, nil
}

// Reload reopens the databases whose files changed. On an error the
// databases in use stay, and the error says which file failed.
func (g *Geo) Reload() error {
	if g == nil {
		return nil
	}
	old := g.dbs.Load()
	dbs, err := g.open(old)
	if err != nil {
		return err
	}
	if *dbs == *old {
		return nil
	}
	g.dbs.Store(dbs)
	for _, pair := range [][2]*geoDB{{old.asn, dbs.asn}, {old.country, dbs.country}} {
		if prev := pair[0]; prev != nil && prev != pair[1] {
			time.AfterFunc(oldReaderGrace, func() { prev.r.Close() })
			g.log.Info("geoip database reloaded", "path", pair[1].path)
		}
	}
	return nil
}

// Watch reloads the databases every interval until ctx ends; a file that
// cannot be loaded is logged as a warning and the previous one kept.
func (g *Geo) Watch(ctx context.Context, interval time.Duration) {
	if g == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.Reload(); err != nil {
				g.log.Warn("geoip database not reloaded, keeping the previous one", "err", err)
			}
		}
	}
}

const (
	srcASBit = 1 << uint(pb.Field_SRC_AS)
	dstASBit = 1 << uint(pb.Field_DST_AS)
)

// Flow adds to f what the databases know of its addresses: AS numbers the
// exporter did not send (its own win), the AS organisation (of the
// exporter's AS number only when the database agrees with it), and the
// countries.
func (g *Geo) Flow(f *pb.Flow) {
	if g == nil {
		return
	}
	dbs := g.dbs.Load()
	src, srcOK := netip.AddrFromSlice(f.SrcAddr)
	dst, dstOK := netip.AddrFromSlice(f.DstAddr)
	var geo pb.Geo
	if db := dbs.asn; db != nil {
		if srcOK {
			f.SrcAs, geo.SrcAsOrg = db.as(src, f.SrcAs, &f.Present, srcASBit)
		}
		if dstOK {
			f.DstAs, geo.DstAsOrg = db.as(dst, f.DstAs, &f.Present, dstASBit)
		}
	}
	if db := dbs.country; db != nil {
		if srcOK {
			geo.SrcCountry = db.country(src)
		}
		if dstOK {
			geo.DstCountry = db.country(dst)
		}
	}
	// Only flows the databases said something of carry a Geo.
	if geo.SrcAsOrg != "" || geo.DstAsOrg != "" || geo.SrcCountry != "" || geo.DstCountry != "" {
		f.Geo = &pb.Geo{SrcCountry: geo.SrcCountry, DstCountry: geo.DstCountry, SrcAsOrg: geo.SrcAsOrg, DstAsOrg: geo.DstAsOrg}
	}
}

// as returns the AS number and organisation of a: the exporter's number
// (have, when bit is set in present) wins. AS 0 is reserved (RFC 7607):
// an exporter without BGP sends it, as every NetFlow v5 record carries
// the field, so it counts as none sent.
func (db *geoDB) as(a netip.Addr, have uint32, present *uint64, bit uint64) (uint32, string) {
	rec, ok := lookup[asRecord](db, a)
	sent := *present&bit != 0 && have != 0
	switch {
	case !ok || rec.Number == 0:
		return have, ""
	case !sent:
		*present |= bit
		return rec.Number, rec.Org
	case have == rec.Number:
		return have, rec.Org
	}
	return have, ""
}

func (db *geoDB) country(a netip.Addr) string {
	rec, ok := lookup[countryRecord](db, a)
	if !ok {
		return ""
	}
	return rec.Country.ISOCode
}

// lookup returns the record of a's network, decoding it only the first
// time it is seen.
func lookup[T any](db *geoDB, a netip.Addr) (*T, bool) {
	res := db.r.Lookup(a.Unmap())
	if !res.Found() {
		return nil, false
	}
	off := res.Offset()
	if v, ok := db.records.Load(off); ok {
		return v.(*T), true
	}
	rec := new(T)
	if err := res.Decode(rec); err != nil {
		// A record that cannot be decoded says nothing; the database was
		// checked at load, so this is rare and not worth a log per flow.
		return nil, false
	}
	if db.count.Load() < maxGeoRecords {
		if _, loaded := db.records.LoadOrStore(off, rec); !loaded {
			db.count.Add(1)
		}
	}
	return rec, true
}
