package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Store keeps what exporters said (templates and option-data state)
// beyond this process: it is loaded at start, so that data arriving after a
// restart decodes at once, and it is shared by every node using it, so that
// a template learnt by one node serves all. The buffer's JetStream
// key-value bucket is one; keys and values are this package's business.
type Store interface {
	// Watch calls update with every entry stored and returns once they
	// have all been delivered; it then keeps calling update with each
	// change any node makes (value nil: the key was deleted) until ctx
	// ends. update is called from one goroutine at a time.
	Watch(ctx context.Context, update func(key string, value []byte)) error
	// Save stores value under key, replacing what was there.
	Save(ctx context.Context, key string, value []byte) error
}

// Values in the store: a format byte, the writer's origin, a kind byte,
// then for a template its set id and the template record exactly as the
// exporter sent it (RFC 3954 / RFC 7011 encoding, the most stable form
// there is), for a session its numbers. A withdrawn template is written as
// a tombstone rather than deleted, so that a node can tell the echo of its
// own withdrawal from another node's.
const (
	valueFormat   = 1
	originBytes   = 8
	valueHeader   = 1 + originBytes + 1
	kindTombstone = 0
	kindTemplate  = 1
	kindSession   = 2

	saveRetryMin = time.Second
	saveRetryMax = 30 * time.Second
	flushTimeout = 5 * time.Second
)

var errStored = errors.New("bad stored entry")

func valueHead(origin [originBytes]byte, kind byte, size int) []byte {
	b := make([]byte, 0, valueHeader+size)
	b = append(b, valueFormat)
	b = append(b, origin[:]...)
	return append(b, kind)
}

func encodeTemplate(origin [originBytes]byte, tm *template) []byte {
	b := valueHead(origin, kindTemplate, 2+len(tm.raw))
	b = binary.BigEndian.AppendUint16(b, tm.setID)
	return append(b, tm.raw...)
}

func encodeTombstone(origin [originBytes]byte) []byte { return valueHead(origin, kindTombstone, 0) }

func encodeSession(origin [originBytes]byte, s *session) []byte {
	b := valueHead(origin, kindSession, 18+16*len(s.samplers))
	b = binary.BigEndian.AppendUint64(b, s.sysInitMs)
	b = binary.BigEndian.AppendUint64(b, s.rate)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.samplers)))
	for _, id := range slices.Sorted(maps.Keys(s.samplers)) {
		b = binary.BigEndian.AppendUint64(b, id)
		b = binary.BigEndian.AppendUint64(b, s.samplers[id])
	}
	return b
}

func decodeSession(b []byte) (*session, error) {
	if len(b) < 18 {
		return nil, fmt.Errorf("%w: session of %d bytes", errStored, len(b))
	}
	s := &session{sysInitMs: binary.BigEndian.Uint64(b), rate: binary.BigEndian.Uint64(b[8:])}
	n := int(binary.BigEndian.Uint16(b[16:]))
	b = b[18:]
	if len(b) != 16*n || n > maxSamplersPerSession {
		return nil, fmt.Errorf("%w: session with %d samplers in %d bytes", errStored, n, len(b))
	}
	if n > 0 {
		s.samplers = make(map[uint64]uint64, n)
	}
	for i := 0; i < n; i++ {
		s.samplers[binary.BigEndian.Uint64(b[16*i:])] = binary.BigEndian.Uint64(b[16*i+8:])
	}
	return s, nil
}

// Store keys: t.<exporter>.<version>.<domain>.<template id> and
// s.<exporter>.<version>.<domain>, with the exporter address written with
// the characters store keys allow (192_0_2_1, 2001-db8--1).
func (k templateKey) storeKey() string {
	return "t." + addrToken(k.exporter) + "." + strconv.Itoa(int(k.version)) + "." +
		strconv.FormatUint(uint64(k.domain), 10) + "." + strconv.Itoa(int(k.id))
}

func (k sessionKey) storeKey() string {
	return "s." + addrToken(k.exporter) + "." + strconv.Itoa(int(k.version)) + "." + strconv.FormatUint(uint64(k.domain), 10)
}

func addrToken(a netip.Addr) string {
	s := a.WithZone("").String()
	if a.Is4() {
		return strings.ReplaceAll(s, ".", "_")
	}
	return strings.ReplaceAll(s, ":", "-")
}

// parseStoreKey reads a key back; id is 0 for a session key.
func parseStoreKey(key string) (kind byte, k templateKey, err error) {
	parts := strings.Split(key, ".")
	bad := fmt.Errorf("%w: key %q", errStored, key)
	switch {
	case len(parts) == 5 && parts[0] == "t":
		kind = kindTemplate
		id, err := strconv.ParseUint(parts[4], 10, 16)
		if err != nil || id < minDataSetID {
			return 0, k, bad
		}
		k.id = uint16(id)
	case len(parts) == 4 && parts[0] == "s":
		kind = kindSession
	default:
		return 0, k, bad
	}
	addr := parts[1]
	if strings.Contains(addr, "_") {
		addr = strings.ReplaceAll(addr, "_", ".")
	} else {
		addr = strings.ReplaceAll(addr, "-", ":")
	}
	a, err1 := netip.ParseAddr(addr)
	v, err2 := strconv.ParseUint(parts[2], 10, 16)
	d, err3 := strconv.ParseUint(parts[3], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || (v != 9 && v != 10) {
		return 0, k, bad
	}
	k.exporter, k.version, k.domain = a.Unmap(), uint16(v), uint32(d)
	return kind, k, nil
}

// applyStored applies one entry of the store, written by an earlier run
// or by another node. It never queues a write: the store has it already.
func (t *Templates) applyStored(key string, value []byte) error {
	kind, k, err := parseStoreKey(key)
	if err != nil {
		return err
	}
	if value != nil {
		if len(value) < valueHeader || value[0] != valueFormat {
			return fmt.Errorf("%w: %s: unknown value format", errStored, key)
		}
		if [originBytes]byte(value[1:valueHeader-1]) == t.origin {
			return nil // our own write, echoed
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if value == nil || value[valueHeader-1] == kindTombstone {
		if kind == kindTemplate {
			t.removeLocked(k)
		} else {
			delete(t.sessions, k.session())
		}
		return nil
	}
	body := value[valueHeader:]
	switch {
	case kind == kindTemplate && value[valueHeader-1] == kindTemplate && len(body) >= 2:
		setID := binary.BigEndian.Uint16(body)
		p, err := parseTemplate(k.version, setID, body[2:])
		if err != nil || p.tm == nil || p.n != len(body)-2 || p.id != k.id {
			return fmt.Errorf("%w: %s: template does not parse", errStored, key)
		}
		return t.putLocked(k, p.tm)
	case kind == kindSession && value[valueHeader-1] == kindSession:
		s, err := decodeSession(body)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if _, known := t.sessions[k.session()]; !known && len(t.sessions) >= maxSessions {
			return errTooManySessions
		}
		t.sessions[k.session()] = s
		return nil
	}
	return fmt.Errorf("%w: %s: value of the wrong kind", errStored, key)
}

// Persister saves what exporters send to a Store and applies what the
// store says other nodes learnt.
type Persister struct {
	t     *Templates
	store Store
	log   *slog.Logger
}

// Persist attaches a store to t: it loads what the store holds, keeps
// applying other nodes' changes until ctx ends, and from now on queues
// t's own changes for Run to write.
func Persist(ctx context.Context, t *Templates, s Store, log *slog.Logger) (*Persister, error) {
	t.mu.Lock()
	t.persist = true
	t.mu.Unlock()
	p := &Persister{t: t, store: s, log: log.With("component", "templates")}
	// Entries delivered before Watch returns are the load; later ones are
	// changes, from another goroutine.
	var loading atomic.Bool
	loading.Store(true)
	var loaded, bad atomic.Int64
	err := s.Watch(ctx, func(key string, value []byte) {
		err := t.applyStored(key, value)
		switch {
		case err != nil && loading.Load():
			bad.Add(1)
		case err != nil:
			p.log.Warn("template store entry ignored", "key", key, "err", err)
		case loading.Load():
			loaded.Add(1)
		}
	})
	loading.Store(false)
	if err != nil {
		return nil, fmt.Errorf("loading templates: %w", err)
	}
	p.log.Info("templates loaded", "entries", loaded.Load(), "templates", t.Len(), "ignored", bad.Load())
	return p, nil
}

// Run writes the queued changes until ctx ends, then writes what is left
// within flushTimeout. A store that fails is retried with backoff; the
// changes wait in memory meanwhile (bounded by maxPendingWrites).
func (p *Persister) Run(ctx context.Context) error {
	retry := time.NewTimer(0)
	<-retry.C
	backoff := saveRetryMin
	failing := false
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			err := p.flush(fctx)
			cancel()
			if err != nil {
				p.log.Warn("template changes not saved at stop", "err", err)
			}
			return nil
		case <-p.t.wake:
		case <-retry.C:
		}
		err := p.flush(ctx)
		switch {
		case err != nil:
			if !failing {
				p.log.Warn("cannot save templates; retrying", "err", err)
			}
			failing = true
			retry.Reset(backoff)
			backoff = min(2*backoff, saveRetryMax)
		case failing:
			p.log.Info("templates saved again")
			failing, backoff = false, saveRetryMin
		}
	}
}

// flush writes the pending changes; those that fail are queued again
// unless a newer change of the same key came meanwhile.
func (p *Persister) flush(ctx context.Context) error {
	t := p.t
	t.mu.Lock()
	batch, unsaved := t.pending, t.unsaved
	t.pending, t.unsaved = map[string][]byte{}, 0
	t.mu.Unlock()
	if unsaved > 0 {
		p.log.Warn("template changes dropped: the store is too slow", "changes", unsaved)
	}
	var errs error
	for key, value := range batch {
		if err := p.store.Save(ctx, key, value); err != nil {
			errs = err
			t.mu.Lock()
			if _, newer := t.pending[key]; !newer {
				t.pending[key] = value
			}
			t.mu.Unlock()
		}
	}
	return errs
}
