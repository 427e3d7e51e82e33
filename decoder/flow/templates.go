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
	// maxFieldsHeld bounds the fields of all templates held (memory).
	maxFieldsHeld = 1 << 21
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
	// ids are the template ids held per domain, for withdrawals of all.
	ids map[sessionKey]map[uint16]struct{}
	// fields is the number of fields of all templates held.
	fields   int
	sessions map[sessionKey]*session
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
		ids:       map[sessionKey]map[uint16]struct{}{},
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
	old := t.templates[k]
	fields := t.fields + len(tm.fields)
	if old != nil {
		fields -= len(old.fields)
	} else if t.count[k.exporter] >= maxTemplatesPerExporter || len(t.templates) >= maxTemplates {
		return errTooManyTemplates
	}
	if fields > maxFieldsHeld {
		return errTooManyTemplates
	}
	if old == nil {
		t.count[k.exporter]++
		ids := t.ids[k.session()]
		if ids == nil {
			ids = map[uint16]struct{}{}
			t.ids[k.session()] = ids
		}
		ids[k.id] = struct{}{}
	}
	t.templates[k] = tm
	t.fields = fields
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
	for id := range t.ids[k.session()] {
		key := templateKey{k.exporter, k.version, k.domain, id}
		if t.templates[key].setID == setID && t.removeLocked(key) {
			t.queueLocked(key.storeKey(), encodeTombstone(t.origin))
		}
	}
}

func (t *Templates) removeLocked(k templateKey) bool {
	old, ok := t.templates[k]
	if !ok {
		return false
	}
	t.fields -= len(old.fields)
	delete(t.templates, k)
	if t.count[k.exporter]--; t.count[k.exporter] <= 0 {
		delete(t.count, k.exporter)
	}
	ids := t.ids[k.session()]
	if delete(ids, k.id); len(ids) == 0 {
		delete(t.ids, k.session())
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

// updateSession applies what the option records of a set said and returns
// the session now in force. Nothing is written when the exporter repeats
// what it said before.
func (t *Templates) updateSession(k sessionKey, updates []sessionUpdate) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.sessions[k]
	s := session{}
	if old != nil {
		s = *old
	}
	changed, cloned := false, false
	for _, u := range updates {
		if u.sysInitMs != 0 && u.sysInitMs != s.sysInitMs {
			s.sysInitMs, changed = u.sysInitMs, true
		}
		switch {
		case u.rate == 0:
		case !u.hasSampler:
			if u.rate != s.rate {
				s.rate, changed = u.rate, true
			}
		case s.samplers[u.samplerID] != u.rate:
			if _, known := s.samplers[u.samplerID]; !known && len(s.samplers) >= maxSamplersPerSession {
				continue
			}
			if !cloned {
				// Published sessions are read without the lock.
				s.samplers, cloned = maps.Clone(s.samplers), true
				if s.samplers == nil {
					s.samplers = map[uint64]uint64{}
				}
			}
			s.samplers[u.samplerID], changed = u.rate, true
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

// TemplateInfo describes one template held, for the status page.
type TemplateInfo struct {
	Exporter netip.Addr `json:"exporter"`
	// Version is 9 (NetFlow v9) or 10 (IPFIX).
	Version uint16 `json:"version"`
	Domain  uint32 `json:"domain"`
	ID      uint16 `json:"id"`
	Fields  int    `json:"fields"`
	Options bool   `json:"options"`
}

// List describes every template held, in no order.
func (t *Templates) List() []TemplateInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]TemplateInfo, 0, len(t.templates))
	for k, tm := range t.templates {
		out = append(out, TemplateInfo{Exporter: k.exporter, Version: k.version, Domain: k.domain, ID: k.id,
			Fields: len(tm.fields), Options: tm.options()})
	}
	return out
}
