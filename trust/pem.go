package trust

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// pemBlock is one "-----BEGIN TYPE-----" ... "-----END TYPE-----" block.
type pemBlock struct {
	Type  string
	Index int    // 1-based position among the file's blocks
	Line  int    // line of the BEGIN line
	DER   []byte // decoded body; nil when Err is set or the body was not decoded
	Err   error  // invalid base64, or no END line
}

// Pos names the block for an error message.
func (b pemBlock) Pos() string { return fmt.Sprintf("block %d (%s, line %d)", b.Index, b.Type, b.Line) }

var (
	utf8BOM   = []byte("\xef\xbb\xbf")
	beginMark = []byte("-----BEGIN ")
	endMark   = []byte("-----END ")
	dashes    = []byte("-----")
)

// isCertType reports the block types that hold a certificate. TRUSTED
// CERTIFICATE is OpenSSL's form with a trust trailer after the certificate.
func isCertType(t string) bool {
	return t == "CERTIFICATE" || t == "TRUSTED CERTIFICATE" || t == "X509 CERTIFICATE"
}

// isPKCS7Type reports the block types of a PKCS#7 SignedData, as OpenSSL
// writes ("PKCS7") and also reads them.
func isPKCS7Type(t string) bool { return t == "PKCS7" || t == "PKCS #7 SIGNED DATA" }

// scanPEM finds every PEM block of data. It is more forgiving than
// encoding/pem where real files are messy, and stricter where pem.Decode is
// silent:
//   - a UTF-8 BOM is ignored (pem.Decode skips the first block after one);
//   - CRLF line ends, trailing blanks and a missing final newline are fine;
//   - text between blocks is ignored, and a BEGIN marker opens a block
//     only when it is alone on its line, blanks aside: a README that
//     quotes the markers in a sentence is text, as it is for OpenSSL;
//   - a BEGIN marker that follows an END marker or a block's body on the
//     same line (files concatenated without a newline) is read as if it
//     started the next line;
//   - a block whose base64 does not decode, or that has no END line before
//     the next BEGIN or the end of the data, is returned with Err set
//     instead of being skipped; the next block is still found.
//
// Only blocks for which decode(type) is true have their body decoded, so
// that private keys are never even held in memory as bytes.
func scanPEM(data []byte, decode func(string) bool) (blocks []pemBlock, sawBegin bool) {
	data = bytes.TrimPrefix(data, utf8BOM)
	var cur *pemBlock
	var body []byte
	lineNo := 0
	finish := func(err error) {
		if err == nil && decode(cur.Type) {
			der := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
			n, derr := base64.StdEncoding.Decode(der, body)
			if derr != nil || n == 0 {
				err = errors.New("invalid base64 body")
			} else {
				cur.DER = der[:n]
			}
		}
		cur.Err = err
		blocks = append(blocks, *cur)
		cur, body = nil, body[:0]
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		lineNo++
		line = bytes.TrimRight(line, " \t\r")
		for len(line) > 0 {
			if cur == nil {
				t, ok := beginType(line)
				if ok {
					sawBegin = true
					cur = &pemBlock{Type: t, Index: len(blocks) + 1, Line: lineNo}
				}
				break
			}
			i := bytes.Index(line, endMark)
			if j := bytes.Index(line, beginMark); j >= 0 && (i < 0 || j < i) {
				// A new block starts before this one ended: this one is
				// unterminated, and must not swallow the next.
				finish(errors.New("no END line"))
				line = line[j:]
				continue
			}
			if i >= 0 {
				body = appendBase64(body, line[:i])
				rest := line[i+len(endMark):]
				j := bytes.Index(rest, dashes)
				if j < 0 {
					finish(errors.New("malformed END line"))
					break
				}
				var err error
				if t := string(rest[:j]); t != cur.Type {
					err = fmt.Errorf("END line says %q", t)
				}
				finish(err)
				line = rest[j+len(dashes):]
				continue
			}
			if bytes.IndexByte(line, ':') >= 0 {
				break // an RFC 1421 header such as Proc-Type: skip it
			}
			body = appendBase64(body, line)
			break
		}
	}
	if cur != nil {
		finish(errors.New("no END line"))
	}
	return blocks, sawBegin
}

// beginType returns the type of the BEGIN marker that line, right-trimmed
// of blanks, is: "-----BEGIN TYPE-----" after optional blanks, with nothing
// after it.
func beginType(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimLeft(line, " \t"), beginMark)
	if !ok {
		return "", false
	}
	t, after, ok := bytes.Cut(rest, dashes)
	return string(t), ok && len(after) == 0
}

// appendBase64 appends the base64 characters of line, dropping blanks.
func appendBase64(dst, line []byte) []byte {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			dst = append(dst, c)
		}
	}
	return dst
}
