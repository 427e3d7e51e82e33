package httpd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestErrorLogKeepsWarningsPerIntake(t *testing.T) {
	var out bytes.Buffer
	l := NewErrorLog()
	log := slog.New(l.Handler(slog.NewTextHandler(&out, nil)))
	routers := log.With("intake", "Routers")
	routers.Info("fine")
	routers.Warn("batch not accepted, retrying", "err", errors.New("status 503"))
	log.Error("buffer refused records", "intake", "Firewall", "records", 3)
	log.Error("no intake named")
	for range maxRecentErrors + 3 {
		routers.Error("again")
	}
	got := l.Recent("Routers")
	if len(got) != maxRecentErrors || got[0].Message != "again" {
		t.Fatalf("Routers: %+v", got)
	}
	fw := l.Recent("Firewall")
	if len(fw) != 1 || fw[0].Message != "buffer refused records records=3" || fw[0].Level != "ERROR" {
		t.Fatalf("Firewall: %+v", fw)
	}
	// Every record still reaches the log.
	if n := strings.Count(out.String(), "\n"); n != 4+maxRecentErrors+3 {
		t.Fatalf("%d lines logged:\n%s", n, out.String())
	}
}
