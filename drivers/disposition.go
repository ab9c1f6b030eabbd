package drivers

import (
	"fmt"
	"net/url"
	"strings"
)

// ContentDisposition offers filename to browsers as an attachment: a
// quoted ASCII fallback in which every other character becomes "_", and
// the RFC 5987 filename* form with the UTF-8 name. Drivers that sign the
// header into a download URL (gcs, azure) share it, so the same filename
// downloads under the same name from either store.
func ContentDisposition(filename string) string {
	var ascii strings.Builder
	for _, r := range filename {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			ascii.WriteByte('_')
			continue
		}
		ascii.WriteRune(r)
	}
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii.String(), url.PathEscape(filename))
}
