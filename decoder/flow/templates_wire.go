package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// Set IDs of template sets (RFC 3954 section 5.2, RFC 7011 section 3.3.2).
const (
	setV9Template           = 0
	setV9OptionsTemplate    = 1
	setIPFIXTemplate        = 2
	setIPFIXOptionsTemplate = 3
	minDataSetID            = 256
	// maxTemplateFields bounds one template; real ones have tens.
	maxTemplateFields = 1024
	variableLength    = 0xffff
	enterpriseBit     = 0x8000
)

var errTemplate = errors.New("bad template record")

// parsedTemplate is one template record read from a template set.
type parsedTemplate struct {
	id uint16
	// tm is the template; nil for a withdrawal.
	tm *template
	// all says the withdrawal is of every template of the set's kind
	// (IPFIX: the template id is the set id).
	all bool
	// n is how many bytes the record took.
	n int
}

// parseTemplate reads the template record at the start of b, from a set of
// kind setID in a message of version 9 or 10. The template keeps a copy of
// the record's bytes: b may be reused afterwards.
func parseTemplate(version, setID uint16, b []byte) (parsedTemplate, error) {
	var p parsedTemplate
	if len(b) < 4 {
		return p, fmt.Errorf("%w: %d bytes left", errTemplate, len(b))
	}
	p.id = binary.BigEndian.Uint16(b)
	count := int(binary.BigEndian.Uint16(b[2:]))
	var scopes int
	off := 4
	switch setID {
	case setV9Template, setIPFIXTemplate:
	case setV9OptionsTemplate:
		// The v9 header gives scope and option lengths in bytes.
		if len(b) < 6 {
			return p, fmt.Errorf("%w: options template header cut short", errTemplate)
		}
		scopeLen, optLen := count, int(binary.BigEndian.Uint16(b[4:]))
		if scopeLen%4 != 0 || optLen%4 != 0 {
			return p, fmt.Errorf("%w: options template %d: lengths %d and %d are not whole fields", errTemplate, p.id, scopeLen, optLen)
		}
		scopes, count, off = scopeLen/4, scopeLen/4+optLen/4, 6
	case setIPFIXOptionsTemplate:
		if count == 0 {
			break
		}
		if len(b) < 6 {
			return p, fmt.Errorf("%w: options template header cut short", errTemplate)
		}
		scopes, off = int(binary.BigEndian.Uint16(b[4:])), 6
		if scopes == 0 || scopes > count {
			return p, fmt.Errorf("%w: options template %d: %d scope fields of %d", errTemplate, p.id, scopes, count)
		}
	default:
		return p, fmt.Errorf("%w: set id %d holds no templates", errTemplate, setID)
	}
	if count == 0 {
		// A withdrawal (RFC 7011 section 8.1); v9 has none, and a v9
		// template of no fields describes nothing: it goes too.
		p.n = off
		p.all = version == 10 && p.id == setID
		if !p.all && p.id < minDataSetID {
			return p, fmt.Errorf("%w: withdrawal of template id %d", errTemplate, p.id)
		}
		return p, nil
	}
	if p.id < minDataSetID {
		return p, fmt.Errorf("%w: template id %d is below %d", errTemplate, p.id, minDataSetID)
	}
	if len(b) < off+4*count {
		return p, fmt.Errorf("%w: template %d of %d fields cut short", errTemplate, p.id, count)
	}
	if count > maxTemplateFields {
		return p, fmt.Errorf("%w: template %d has %d fields, more than %d", errTemplate, p.id, count, maxTemplateFields)
	}
	tm := &template{setID: setID, fields: make([]netflow.Field, 0, count)}
	for i := range count {
		if len(b) < off+4 {
			return p, fmt.Errorf("%w: template %d cut short at field %d", errTemplate, p.id, i)
		}
		f := netflow.Field{Type: binary.BigEndian.Uint16(b[off:]), Length: binary.BigEndian.Uint16(b[off+2:])}
		off += 4
		if version == 10 && f.Type&enterpriseBit != 0 {
			if len(b) < off+4 {
				return p, fmt.Errorf("%w: template %d cut short at field %d", errTemplate, p.id, i)
			}
			f.Type &^= enterpriseBit
			f.PenProvided, f.Pen = true, binary.BigEndian.Uint32(b[off:])
			off += 4
		}
		switch f.Length {
		case 0:
			// It holds nothing; skipping it keeps decoding work within
			// the datagram's size (each field read takes a byte at least).
			continue
		case variableLength:
			tm.minBytes++
		default:
			tm.minBytes += int(f.Length)
		}
		tm.fields = append(tm.fields, f)
		if i < scopes {
			tm.scopes++
		}
	}
	if tm.minBytes == 0 {
		// goflow2 loops forever on the data of such a template.
		return p, fmt.Errorf("%w: template %d describes records of zero bytes", errTemplate, p.id)
	}
	tm.raw = bytes.Clone(b[:off])
	p.tm, p.n = tm, off
	return p, nil
}

// nextValue splits the next value of a record off b: the field's fixed
// length, or the length prefix of a variable-length field (RFC 7011
// section 7). ok is false when b is too short.
func nextValue(f *netflow.Field, b []byte) (value, rest []byte, ok bool) {
	n := int(f.Length)
	if f.Length == variableLength {
		if len(b) < 1 {
			return nil, nil, false
		}
		n, b = int(b[0]), b[1:]
		if n == 0xff {
			if len(b) < 2 {
				return nil, nil, false
			}
			n, b = int(binary.BigEndian.Uint16(b)), b[2:]
		}
	}
	if len(b) < n {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}
