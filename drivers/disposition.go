package drivers

import (
	"strings"
)

// ContentDisposition offers filename to browsers as an attachment: a
// quoted ASCII fallback in which every other character becomes "_", and
// the RFC 5987 filename* form with the UTF-8 name. Every driver that signs
// the header into a download URL shares it, so the same filename downloads
// under the same name from any store.
func ContentDisposition(filename string) string {
	var b strings.Builder
	b.WriteString(`attachment; filename="`)
	for _, r := range filename {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	b.WriteString(`"; filename*=UTF-8''`)
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(filename); i++ {
		c := filename[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// isAttrChar is RFC 5987's attr-char: what may stand unescaped in an
// ext-value. url.PathEscape is not this: it leaves "=" and others as they
// are, which parsers of the header then refuse.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
