package flow

import (
	"bytes"
	"crypto/rand"
	"errors"
	"maps"
	"net/netip"
	"sync"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Bounds on what exporters (or spoofers using their addresses) can make us
// keep in memory and in the store.
const (
	maxTemplatesPerExporter = 4096
	maxTemplates            = 1 << 17
	maxSessions             = 1 << 16
	maxSamplersPerSession   = 256
	// maxPendingWrites bounds the changes waiting for a slow store.
	maxPendingWrites = maxTemplates + maxSessions
)

var (
	errTooManyTemplates = errors.New("too many templates")
	errTooManySessions  = errors.New("too many exporter domains")
)

// templateKey names one template: NetFlow keeps templates per exporter
// address and observation domain (source ID), never per source port, so a
// restart or a port change on the exporter side does not lose them.
type templateKey struct {
	exporter netip.Addr
	version  uint16
	domain   uint32
	id       uint16
}

// sessionKey names the state an exporter keeps per observation domain.
type sessionKey struct {
	exporter netip.Addr
	version  uint16
	domain   uint32
}

func (k templateKey) session() sessionKey { return sessionKey{k.exporter, k.version, k.domain} }

// template is one data or options template, parsed once for decoding.
// It is never changed once stored: a redefinition replaces it.
type template struct {
	// setID is the kind of set it came in: 0 (v9) or 2 (IPFIX) for data
	// templates, 1 (v9) or 3 (IPFIX) for options templates.
	setID uint16
	// fields are the scope fields (options templates) then the others,
	// as goflow2 describes them.
	fields []netflow.Field
	// scopes is how many of fields are scope fields.
	scopes int
	// minBytes is the least one record takes (a variable-length field
	// takes at least its length byte); never 0.
	minBytes int
	// raw is the template record as the exporter sent it: what is stored,
	// and what a resent template is compared with.
	raw []byte
}

func (t *template) options() bool { return t.setID == 1 || t.setID == 3 }

// session is what option data told us about one exporter's domain. A
// published session is never changed: updates replace it.
type session struct {
	// sysInitMs is systemInitTimeMilliseconds (IPFIX IE 160), the base of
	// uptime-relative times; 0 until the exporter sends it.
	sysInitMs uint64
	// rate is the sampling rate option data gave for the whole domain
	// (no sampler id); 0 unknown.
	rate uint64
	// samplers are the rates of the samplers option data named, by
	// sampler id (IE 48 or 302).
	samplers map[uint64]uint64
}

// Templates holds every exporter's templates and option-data state. It is
// shared by all decoders of a process; each exporter's packets are decoded
// in order on one worker, so the lock is only contended across exporters.
// With a Store (Persist), what exporters send is saved and what other
// nodes learn is applied here.
type Templates struct {
	mu        sync.RWMutex
	templates map[templateKey]*template
	count     map[netip.Addr]int
	sessions  map[sessionKey]*session
	// pending are the store writes waiting for the writer, by store key:
	// a later change of a key replaces an earlier one not yet written.
	pending map[string][]byte
	// unsaved counts changes dropped because pending was full.
	unsaved int
	wake    chan struct{}
	// persist is set once a store is attached; changes are queued only then.
	persist bool
	// origin marks the values this process writes, to skip their echo
	// from the store's watch.
	origin [originBytes]byte
}

// NewTemplates returns an empty store.
func NewTemplates() *Templates {
	t := &Templates{
		templates: map[templateKey]*template{},
		count:     map[netip.Addr]int{},
		sessions:  map[sessionKey]*session{},
		pending:   map[string][]byte{},
		wake:      make(chan struct{}, 1),
	}
	_, _ = rand.Read(t.origin[:])
	return t
}

// Len is the number of templates held.
func (t *Templates) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.templates)
}

// get returns a template, or nil.
func (t *Templates) get(k templateKey) *template {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.templates[k]
}

// add stores a template the exporter sent; a template equal to the one held
// changes nothing (exporters resend them every few packets).
func (t *Templates) add(k templateKey, tm *template) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.templates[k]; old != nil && old.setID == tm.setID && bytes.Equal(old.raw, tm.raw) {
		return nil
	}
	if err := t.putLocked(k, tm); err != nil {
		return err
	}
	t.queueLocked(k.storeKey(), encodeTemplate(t.origin, tm))
	return nil
}

// putLocked stores a template within the bounds.
func (t *Templates) putLocked(k templateKey, tm *template) error {
	if _, known := t.templates[k]; !known {
		if t.count[k.exporter] >= maxTemplatesPerExporter || len(t.templates) >= maxTemplates {
			return errTooManyTemplates
		}
		t.count[k.exporter]++
	}
	t.templates[k] = tm
	return nil
}

// withdraw removes the templates the exporter withdrew: one id, or with
// all set, every template of the domain sent in sets of kind setID.
func (t *Templates) withdraw(k templateKey, setID uint16, all bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !all {
		if t.removeLocked(k) {
			t.queueLocked(k.storeKey(), encodeTombstone(t.origin))
		}
		return
	}
	for key, tm := range t.templates {
		if key.session() == k.session() && tm.setID == setID && t.removeLocked(key) {
			t.queueLocked(key.storeKey(), encodeTombstone(t.origin))
		}
	}
}

func (t *Templates) removeLocked(k templateKey) bool {
	if _, ok := t.templates[k]; !ok {
		return false
	}
	delete(t.templates, k)
	if t.count[k.exporter]--; t.count[k.exporter] <= 0 {
		delete(t.count, k.exporter)
	}
	return true
}

// session returns what option data said about a domain, or nil.
func (t *Templates) session(k sessionKey) *session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.sessions[k]
}

// sessionUpdate is what one options record says; zero values say nothing.
type sessionUpdate struct {
	sysInitMs  uint64
	rate       uint64
	samplerID  uint64
	hasSampler bool
}

// updateSession applies option data and returns the session now in force.
// Nothing is written when the exporter repeats what it said before.
func (t *Templates) updateSession(k sessionKey, u sessionUpdate) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.sessions[k]
	s := session{}
	if old != nil {
		s = *old
	}
	changed := false
	if u.sysInitMs != 0 && u.sysInitMs != s.sysInitMs {
		s.sysInitMs, changed = u.sysInitMs, true
	}
	if u.rate != 0 {
		switch {
		case u.hasSampler && s.samplers[u.samplerID] != u.rate:
			if len(s.samplers) >= maxSamplersPerSession && s.samplers[u.samplerID] == 0 {
				break
			}
			s.samplers = maps.Clone(s.samplers)
			if s.samplers == nil {
				s.samplers = map[uint64]uint64{}
			}
			s.samplers[u.samplerID], changed = u.rate, true
		case !u.hasSampler && u.rate != s.rate:
			s.rate, changed = u.rate, true
		}
	}
	if !changed {
		return old
	}
	if old == nil && len(t.sessions) >= maxSessions {
		return nil
	}
	t.sessions[k] = &s
	t.queueLocked(k.storeKey(), encodeSession(t.origin, &s))
	return &s
}

// queueLocked hands a change to the store writer, when there is a store.
func (t *Templates) queueLocked(key string, value []byte) {
	if !t.persist {
		return
	}
	if _, queued := t.pending[key]; !queued && len(t.pending) >= maxPendingWrites {
		t.unsaved++
		return
	}
	t.pending[key] = value
	select {
	case t.wake <- struct{}{}:
	default:
	}
}
