package flow

import (
	"encoding/binary"
	"fmt"
)

// checkTemplateSets walks the template and options template sets of a v9
// or IPFIX datagram before goflow2 decodes it. goflow2 sizes its field
// lists from the counts a template states (make([]Field, count), up to
// 786 KB for one 24-byte set) and, for each data record, a value list as
// long as the template; a template must therefore hold the fields it
// counts, and each field must take at least one byte of a record, so that
// what decoding allocates stays proportional to the bytes received.
func checkTemplateSets(data []byte, version uint16) error {
	hdr := v9HeaderBytes
	if version == 10 {
		hdr = ipfixHdrBytes
	}
	b := data[hdr:]
	for len(b) >= 4 {
		id, length := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if length < 4 {
			return nil // goflow2 stops at such a set itself
		}
		body := b[4:min(length, len(b))]
		b = b[min(length, len(b)):]
		var err error
		switch {
		case version == 9 && id == 0, version == 10 && id == 2:
			err = checkTemplates(body, version == 10, false)
		case version == 10 && id == 3:
			err = checkTemplates(body, true, true)
		case version == 9 && id == 1:
			err = checkV9OptionTemplates(body)
		}
		if err != nil {
			return fmt.Errorf("%w: set %d: %w", ErrMalformed, id, err)
		}
	}
	return nil
}

// checkTemplates checks the records of an IPFIX or v9 template set, or of
// an IPFIX options template set (which states a scope field count too).
func checkTemplates(b []byte, ipfix, options bool) error {
	hdr := 4
	if options {
		hdr = 6
	}
	// goflow2 reads records while 4 bytes remain.
	for len(b) >= 4 {
		if len(b) < hdr {
			return nil // goflow2 fails reading the header, having allocated nothing
		}
		id, count := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		scopes := 0
		if options {
			scopes = int(binary.BigEndian.Uint16(b[4:]))
		}
		b = b[hdr:]
		if max(count, scopes)*4 > len(b) {
			return fmt.Errorf("template %d states %d fields in %d bytes", id, max(count, scopes), len(b))
		}
		var err error
		if b, err = checkFields(b, count, ipfix, id); err != nil {
			return err
		}
	}
	return nil
}

// checkV9OptionTemplates checks the records of a v9 options template set,
// which state their scope and option fields in bytes.
func checkV9OptionTemplates(b []byte) error {
	for len(b) >= 4 {
		if len(b) < 6 {
			return nil
		}
		id := binary.BigEndian.Uint16(b)
		fields := int(binary.BigEndian.Uint16(b[2:]))/4 + int(binary.BigEndian.Uint16(b[4:]))/4
		b = b[6:]
		if fields*4 > len(b) {
			return fmt.Errorf("options template %d states %d fields in %d bytes", id, fields, len(b))
		}
		var err error
		if b, err = checkFields(b, fields, false, id); err != nil {
			return err
		}
	}
	return nil
}

// checkFields checks count field specifiers at the start of b and returns
// what follows them.
func checkFields(b []byte, count int, ipfix bool, id uint16) ([]byte, error) {
	for range count {
		if len(b) < 4 {
			return nil, fmt.Errorf("template %d is cut short", id)
		}
		typ, length := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		b = b[4:]
		if ipfix && typ&0x8000 != 0 {
			if len(b) < 4 {
				return nil, fmt.Errorf("template %d is cut short", id)
			}
			b = b[4:]
		}
		if length == 0 {
			return nil, fmt.Errorf("template %d has a field of length 0", id)
		}
	}
	return b, nil
}
