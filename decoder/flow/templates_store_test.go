package flow

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"testing"
	"time"

	pb "github.com/flowgate/flowgate/proto"
)

// memStore is a Store in memory, shared by the Templates of several
// simulated nodes. Changes reach every watcher in order, from the saving
// goroutine, as a JetStream KV watch delivers them.
type memStore struct {
	mu       sync.Mutex
	entries  map[string][]byte
	watchers []func(string, []byte)
	saves    int
}

func newMemStore() *memStore { return &memStore{entries: map[string][]byte{}} }

func (s *memStore) Watch(ctx context.Context, update func(string, []byte)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.entries {
		update(k, v)
	}
	s.watchers = append(s.watchers, update)
	return nil
}

func (s *memStore) Save(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = value
	s.saves++
	for _, w := range s.watchers {
		w(key, value)
	}
	return nil
}

func (s *memStore) snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.entries)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is one process's Templates attached to a store, its persister
// running until the test ends.
func node(t *testing.T, s Store) *Templates {
	t.Helper()
	tm := NewTemplates()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Persist(ctx, tm, s, quiet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tm
}

// eventually polls cond for up to two seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 2s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const exportSec = 1_800_000_000

// learn has exporter A send a template, an options template with its
// system init time and sampling rate, and one record.
func learn(t *testing.T, tm *Templates) {
	t.Helper()
	dg := msg{version: 10, domain: 3, export: exportSec, sets: [][]byte{
		set(setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2), f(ieFlowStartSysUpTime, 4))),
		set(setIPFIXOptionsTemplate, ipfixOptTmpl(257, []field{f(143, 4)}, f(ieSystemInitTimeMilliseconds, 8), f(ieSamplingPacketInterval, 4), f(ieSamplingPacketSpace, 4))),
		set(257, cat(u32(1), u64(exportSec*1000-60_000), u32(1), u32(9))),
	}}.bytes()
	decodeAll(t, NewDecoder(tm), exporterA, dg)
}

// dataOnly is a datagram of exporter A with data and no template.
var dataOnly = msg{version: 10, domain: 3, export: exportSec, sets: [][]byte{set(256, cat(u16(4242), u32(30_000)))}}.bytes()

func checkDataOnly(t *testing.T, tm *Templates) {
	t.Helper()
	flows, res := decodeAll(t, NewDecoder(tm), exporterA, dataOnly)
	if res.MissingTemplate != 0 || len(flows) != 1 {
		t.Fatalf("data without its template: %+v", res)
	}
	fl := flows[0]
	if fl.SrcPort != 4242 || fl.StartMs != exportSec*1000-30_000 || fl.SamplingRate != 10 || !has(fl, pb.Field_START) {
		t.Fatalf("decoded %v", fl)
	}
}

func TestTemplatesSurviveARestart(t *testing.T) {
	s := newMemStore()
	first := node(t, s)
	learn(t, first)
	eventually(t, "templates and session saved", func() bool { return len(s.snapshot()) == 3 })

	// A new process on the same store decodes data at once, with the
	// system init time and sampling rate it has not been sent.
	checkDataOnly(t, node(t, s))
}

func TestTemplatesResentAreNotWrittenAgain(t *testing.T) {
	tm := NewTemplates()
	tm.persist = true // queue changes, with no writer taking them
	learn(t, tm)
	if len(tm.pending) != 3 {
		t.Fatalf("%d changes queued, want 3", len(tm.pending))
	}
	clear(tm.pending)
	learn(t, tm)
	if len(tm.pending) != 0 {
		t.Fatalf("resending the same templates and options queued %d changes", len(tm.pending))
	}
}

func TestTemplatesSharedBetweenNodes(t *testing.T) {
	s := newMemStore()
	a, b := node(t, s), node(t, s)
	learn(t, a)
	eventually(t, "node B has A's templates", func() bool { return b.Len() == 2 })
	checkDataOnly(t, b)

	// A withdrawal on A reaches B, and a node started later.
	withdraw := msg{version: 10, domain: 3, sets: [][]byte{set(setIPFIXTemplate, cat(u16(256), u16(0)))}}.bytes()
	decodeAll(t, NewDecoder(a), exporterA, withdraw)
	eventually(t, "node B forgets the withdrawn template", func() bool { return b.Len() == 1 })
	if c := node(t, s); c.Len() != 1 {
		t.Fatalf("a new node loaded %d templates, want 1", c.Len())
	}
}

func TestTemplatesIgnoreTheirOwnEcho(t *testing.T) {
	tm := NewTemplates()
	k := templateKey{exporterA, 10, 0, 256}
	first := &template{setID: setIPFIXTemplate, raw: tmpl(256, f(ieSourceTransportPort, 2))}
	p, _ := parseTemplate(10, setIPFIXTemplate, first.raw)
	second, _ := parseTemplate(10, setIPFIXTemplate, tmpl(256, f(ieDestinationTransportPort, 2)))
	if err := tm.add(k, second.tm); err != nil {
		t.Fatal(err)
	}
	// The store delivers this process's earlier definition late: it is
	// an echo, not news.
	if err := tm.applyStored(k.storeKey(), encodeTemplate(tm.origin, p.tm)); err != nil {
		t.Fatal(err)
	}
	if got := tm.get(k); got.fields[0].Type != ieDestinationTransportPort {
		t.Fatalf("an echo replaced the newer template")
	}
	// Another node's definition is applied.
	other := NewTemplates()
	if err := tm.applyStored(k.storeKey(), encodeTemplate(other.origin, p.tm)); err != nil {
		t.Fatal(err)
	}
	if got := tm.get(k); got.fields[0].Type != ieSourceTransportPort {
		t.Fatalf("another node's template was not applied")
	}
}

func TestTemplatesStoreEntriesChecked(t *testing.T) {
	other := NewTemplates()
	good, _ := parseTemplate(10, setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2)))
	k := templateKey{exporterA, 10, 0, 256}
	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		ok    bool
	}{
		{"template", k.storeKey(), encodeTemplate(other.origin, good.tm), true},
		{"IPv6 exporter", templateKey{netip.MustParseAddr("2001:db8::1"), 10, 0, 256}.storeKey(), encodeTemplate(other.origin, good.tm), true},
		{"unknown key", "x.1", encodeTemplate(other.origin, good.tm), false},
		{"template id below 256", "t.192_0_2_1.10.0.255", encodeTemplate(other.origin, good.tm), false},
		{"id differs from the record", "t.192_0_2_1.10.0.300", encodeTemplate(other.origin, good.tm), false},
		{"unknown format", k.storeKey(), append([]byte{9}, encodeTemplate(other.origin, good.tm)[1:]...), false},
		{"cut short", k.storeKey(), encodeTemplate(other.origin, good.tm)[:14], false},
		{"session under a template key", k.storeKey(), encodeSession(other.origin, &session{rate: 5}), false},
		{"session", k.session().storeKey(), encodeSession(other.origin, &session{rate: 5, samplers: map[uint64]uint64{1: 2}}), true},
		{"session cut short", k.session().storeKey(), encodeSession(other.origin, &session{samplers: map[uint64]uint64{1: 2}})[:30], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewTemplates().applyStored(tc.key, tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
		})
	}
	for _, k := range []templateKey{{exporterA, 9, 7, 300}, {netip.MustParseAddr("2001:db8::1"), 10, 1 << 31, 65535}} {
		kind, back, err := parseStoreKey(k.storeKey())
		if err != nil || kind != kindTemplate || back != k {
			t.Fatalf("key %s read back as %v %v", k.storeKey(), back, err)
		}
	}
}

// FuzzStoredEntry: what the store holds was written by any node, or by
// anyone with access to the NATS: an entry never panics, and one that is
// taken leaves templates data can be decoded with.
func FuzzStoredEntry(fz *testing.F) {
	other := NewTemplates()
	good, _ := parseTemplate(10, setIPFIXTemplate, tmpl(256, f(ieSourceTransportPort, 2), f(82, variableLength)))
	opts, _ := parseTemplate(10, setIPFIXOptionsTemplate, ipfixOptTmpl(256, []field{f(ieSelectorID, 4)}, f(ieSamplingInterval, 4)))
	v9, _ := parseTemplate(9, setV9OptionsTemplate, v9OptTmpl(256, []field{f(1, 4)}, f(ieSamplerID, 1), f(ieSamplerRandomInterval, 4)))
	fz.Add("t.192_0_2_1.10.0.256", encodeTemplate(other.origin, good.tm))
	fz.Add("t.192_0_2_1.10.0.256", encodeTemplate(other.origin, opts.tm))
	fz.Add("t.2001-db8--1.9.7.256", encodeTemplate(other.origin, v9.tm))
	fz.Add("s.192_0_2_1.10.0", encodeSession(other.origin, &session{sysInitMs: 5, rate: 5, samplers: map[uint64]uint64{1: 2}}))
	fz.Add("t.192_0_2_1.10.0.256", encodeTombstone(other.origin))
	fz.Fuzz(func(t *testing.T, key string, value []byte) {
		tm := NewTemplates()
		if err := tm.applyStored(key, value); err != nil {
			return
		}
		_, k, err := parseStoreKey(key)
		if err != nil {
			t.Fatalf("key %q taken but does not parse: %v", key, err)
		}
		var batch pb.Batch
		dg := msg{version: k.version, domain: k.domain, sets: [][]byte{set(max(k.id, minDataSetID), make([]byte, 64))}}.bytes()
		if _, err := NewDecoder(tm).Decode(dg, k.exporter, received, &batch); err != nil {
			t.Fatal(err)
		}
	})
}
