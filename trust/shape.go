package trust

// A derReader gives byte i of a DER encoding.
type derReader interface{ at(i int) byte }

// derBytes is a decoded DER encoding.
type derBytes []byte

func (d derBytes) at(i int) byte { return d[i] }

// derField is a field certShape expects: its tag, and whether it may be absent.
type derField struct {
	tag      byte
	optional bool
}

// certLevels are the fields of a Certificate (RFC 5280 4.1) that certShape
// checks, level by level: each level is the contents of the first field
// of the level before.
var certLevels = [][]derField{
	{{0x30, false}}, // Certificate ::= SEQUENCE
	{
		{0x30, false}, // tbsCertificate
		{0x30, false}, // signatureAlgorithm
		{0x03, false}, // signatureValue BIT STRING
	},
	{
		{0xa0, true},  // [0] EXPLICIT version
		{0x02, false}, // serialNumber INTEGER
		{0x30, false}, // signature
		{0x30, false}, // issuer
		{0x30, false}, // validity
		{0x30, false}, // subject
		{0x30, false}, // subjectPublicKeyInfo
		{0x81, true},  // [1] IMPLICIT issuerUniqueID
		{0x82, true},  // [2] IMPLICIT subjectUniqueID
		{0xa3, true},  // [3] EXPLICIT extensions
	},
}

// certShape reports whether the size bytes of d are shaped as a
// certificate at its top three levels (certLevels): each level holds its
// fields with their tags, in order (an optional one may be absent), and
// nothing else, and nothing follows the Certificate. That is what
// OpenSSL's decoder checks first, and it tells a certificate from another
// structure (a key, a CRL, a request, a truncated or padded DER). The
// fields' contents are not checked: parsing Debian's roots in full
// (BenchmarkSystemRootsFullParse) costs over five times reading the bundle.
func certShape[D derReader](d D, size int) bool {
	start, end := 0, size
	for _, fields := range certLevels {
		var ok bool
		if start, end, ok = derFields(d, start, end, fields); !ok {
			return false
		}
	}
	return true
}

// derFields reports whether the DER elements from off to end are fields,
// in order, and nothing else; it returns the contents of the first.
func derFields[D derReader](d D, off, end int, fields []derField) (start, stop int, ok bool) {
	for i, f := range fields {
		if off == end {
			if !f.optional {
				return 0, 0, false
			}
			continue
		}
		tag, s, next, ok := derElement(d, off, end)
		switch {
		case !ok:
			return 0, 0, false
		case tag != f.tag && f.optional:
			continue
		case tag != f.tag:
			return 0, 0, false
		case i == 0:
			start, stop = s, next
		}
		off = next
	}
	return start, stop, off == end
}

// derElement reads the header of the DER element at off, which must end by
// end: a one-byte tag and a definite length, in short form or in at most
// three bytes (16 MiB, the system bundle's limit). It returns the tag, the
// start of the contents and the end of the element.
func derElement[D derReader](d D, off, end int) (tag byte, start, next int, ok bool) {
	if end-off < 2 {
		return 0, 0, 0, false
	}
	tag, n := d.at(off), int(d.at(off+1))
	start = off + 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || end-start < k {
			return 0, 0, 0, false
		}
		for n = 0; k > 0; k-- {
			n = n<<8 | int(d.at(start))
			start++
		}
	}
	if n > end-start {
		return 0, 0, 0, false
	}
	return tag, start, start + n, true
}
