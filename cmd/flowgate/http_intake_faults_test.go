package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowgate/flowgate/internal/apptest"
	"github.com/flowgate/flowgate/internal/intaketest"
)

// kill -9 right after the local HTTP intake answered 200: the events of
// the requests it answered are in the store, and arrive after a restart,
// each once.
func TestHTTPIntakeKillAfter200(t *testing.T) {
	t.Parallel()
	intake := intaketest.NewHTTPS(t)
	// Nothing is shipped before the kill: the events are only in the store.
	intake.Refuse(func(int) (int, string) { return 503, "" })
	port := apptest.FreePort(t, "tcp")
	a := newApp(t, fmt.Sprintf("intakes:\n  - {name: Apps, protocol: http, port: %d, bind: 127.0.0.1, plain_http: true, intake_keys: [%s], output: %s}\n",
		port, testKey, intake.Output()))
	const requests, perRequest = 20, 100
	for r := range requests {
		events := make([]string, perRequest)
		for i := range events {
			events[i] = fmt.Sprintf("%q", fmt.Sprintf("req-%d-%d", r, i))
		}
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/jsons", port), strings.NewReader("["+strings.Join(events, ",")+"]"))
		req.Header.Set("X-SEKOIAIO-INTAKE-KEY", testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: answered %d %s", r, resp.StatusCode, answer)
		}
	}
	a.proc.Kill()
	intake.Refuse(func(int) (int, string) { return 0, "" })
	a.restart(t)
	got := map[string]int{}
	for _, e := range intake.WaitEvents(t, requests*perRequest, 90*time.Second) {
		got[e.Event]++
	}
	for r := range requests {
		for i := range perRequest {
			if id := fmt.Sprintf("req-%d-%d", r, i); got[id] != 1 {
				t.Errorf("%s arrived %d times", id, got[id])
			}
		}
	}
}
