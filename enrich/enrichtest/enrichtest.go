// Package enrichtest writes small MaxMind-format databases for tests of
// the AS and country enrichment, laid out as GeoLite2 and DB-IP Lite files.
package enrichtest

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// WriteDB writes a database of type dbType (e.g. "GeoLite2-ASN",
// "DBIP-Country-Lite") mapping networks (CIDR) to records at path. It is
// written aside then renamed, as a database updater replaces a file.
func WriteDB(t testing.TB, path, dbType string, records map[string]mmdbtype.Map) {
	t.Helper()
	if err := Write(path, dbType, records); err != nil {
		t.Fatal(err)
	}
}

// Write is WriteDB for callers outside tests (the benchmark harness).
func Write(path, dbType string, records map[string]mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		return err
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return err
		}
		if err := tree.Insert(n, rec); err != nil {
			return fmt.Errorf("%s: %w", cidr, err)
		}
	}
	tmp := path + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(fh); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ASN is the record of an ASN database.
func ASN(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n), "autonomous_system_organization": mmdbtype.String(org)}
}

// Country is the record of a Country database.
func Country(code string) mmdbtype.Map {
	return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(code)}}
}
