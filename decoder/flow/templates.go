package flow

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// maxTemplatesPerExporter bounds what one exporter (or a spoofer using its
// address) can make us keep.
const maxTemplatesPerExporter = 4096

var errTooManyTemplates = errors.New("too many templates for this exporter")

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

// session is what option data told us about one exporter's domain.
type session struct {
	// sysInitMs is systemInitTimeMilliseconds (IPFIX IE 160), the base of
	// uptime-relative times; 0 until the exporter sends it.
	sysInitMs uint64
	// samplingRate is the packet interval the exporter reported; 0 unknown.
	samplingRate uint64
}

// Templates holds every exporter's templates and option-data state. It is
// shared by all decoders of a process; each exporter's packets are decoded
// in order on one worker, so the lock is only contended across exporters.
type Templates struct {
	mu        sync.RWMutex
	templates map[templateKey]any
	count     map[netip.Addr]int
	sessions  map[sessionKey]*session
}

// NewTemplates returns an empty store.
func NewTemplates() *Templates {
	return &Templates{
		templates: map[templateKey]any{},
		count:     map[netip.Addr]int{},
		sessions:  map[sessionKey]*session{},
	}
}

// Len is the number of templates held.
func (t *Templates) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.templates)
}

func (t *Templates) session(k sessionKey) session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if s := t.sessions[k]; s != nil {
		return *s
	}
	return session{}
}

func (t *Templates) updateSession(k sessionKey, update func(*session)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[k]
	if s == nil {
		s = &session{}
		t.sessions[k] = s
	}
	update(s)
}

// exporterTemplates is the view goflow2's decoder sees: its keys lack the
// exporter, which this view adds.
type exporterTemplates struct {
	store    *Templates
	exporter netip.Addr
}

var _ netflow.NetFlowTemplateSystem = (*exporterTemplates)(nil)

func (v *exporterTemplates) key(version uint16, domain uint32, id uint16) templateKey {
	return templateKey{v.exporter, version, domain, id}
}

// AddTemplate stores a template. A template that would decode records of
// zero bytes is a withdrawal (IPFIX sends field count 0) or garbage, and
// goflow2 would loop forever on its data: it removes the template instead.
func (v *exporterTemplates) AddTemplate(version uint16, domain uint32, id uint16, template any) error {
	k := v.key(version, domain, id)
	t := v.store
	t.mu.Lock()
	defer t.mu.Unlock()
	_, known := t.templates[k]
	if recordSize(template) == 0 {
		if known {
			delete(t.templates, k)
			t.count[k.exporter]--
		}
		return nil
	}
	if !known {
		if t.count[k.exporter] >= maxTemplatesPerExporter {
			return errTooManyTemplates
		}
		t.count[k.exporter]++
	}
	t.templates[k] = template
	return nil
}

// GetTemplate returns a stored template or netflow.ErrorTemplateNotFound.
func (v *exporterTemplates) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	t := v.store
	t.mu.RLock()
	defer t.mu.RUnlock()
	if tmpl, ok := t.templates[v.key(version, domain, id)]; ok {
		return tmpl, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

// RemoveTemplate drops a template.
func (v *exporterTemplates) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	k := v.key(version, domain, id)
	t := v.store
	t.mu.Lock()
	defer t.mu.Unlock()
	tmpl, ok := t.templates[k]
	if !ok {
		return nil, netflow.ErrorTemplateNotFound
	}
	delete(t.templates, k)
	t.count[k.exporter]--
	return tmpl, nil
}

// GetTemplates returns this exporter's templates keyed as goflow2 keys them.
func (v *exporterTemplates) GetTemplates() netflow.FlowBaseTemplateSet {
	t := v.store
	t.mu.RLock()
	defer t.mu.RUnlock()
	set := netflow.FlowBaseTemplateSet{}
	for k, tmpl := range t.templates {
		if k.exporter == v.exporter {
			set[uint64(k.version)<<48|uint64(k.domain)<<16|uint64(k.id)] = tmpl
		}
	}
	return set
}

// recordSize is the least number of bytes one record of the template takes;
// a variable-length field takes at least its length byte.
func recordSize(template any) int {
	var fields [][]netflow.Field
	switch t := template.(type) {
	case netflow.TemplateRecord:
		fields = [][]netflow.Field{t.Fields}
	case netflow.IPFIXOptionsTemplateRecord:
		fields = [][]netflow.Field{t.Scopes, t.Options}
	case netflow.NFv9OptionsTemplateRecord:
		fields = [][]netflow.Field{t.Scopes, t.Options}
	}
	n := 0
	for _, fs := range fields {
		for _, f := range fs {
			if f.Length == 0xffff {
				n++
			} else {
				n += int(f.Length)
			}
		}
	}
	return n
}
