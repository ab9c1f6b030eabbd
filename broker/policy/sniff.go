package policy

import (
	"fmt"
	"net/http"
	"strings"
)

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 512

// Sniff compares what the bytes look like (http.DetectContentType, the
// WHATWG algorithm browsers use) with the declared type, and returns an
// error naming both when they are not compatible. The rules, from the
// point of view of someone who will later serve these bytes:
//
//   - Markup that a browser would render or run (text/html, text/xml) is
//     accepted only when declared as HTML, or as XML (application/xml,
//     text/xml, or a +xml type such as image/svg+xml).
//   - image/*, audio/* and video/* need the same family, or bytes the
//     sniffer does not know (application/octet-stream: HEIC, TIFF and many
//     others). So a PNG declared as image/jpeg passes; text does not.
//   - text/*, application/json and other text formats need bytes that
//     sniff as text (text/plain).
//   - application/octet-stream accepts any bytes but markup.
//   - Any other application/* type passes when the sniffer does not
//     recognise the bytes (application/octet-stream, or text/plain for
//     text-like formats), or recognises exactly that type; ZIP bytes pass
//     for ZIP-based formats (docx, odt, epub, jar, *+zip).
func Sniff(declared string, head []byte) error {
	if len(head) > SniffLen {
		head = head[:SniffLen]
	}
	detected := MediaType(http.DetectContentType(head))
	if Compatible(MediaType(declared), detected) {
		return nil
	}
	return fmt.Errorf("content looks like %s, not the declared %s", detected, MediaType(declared))
}

// Compatible is Sniff's rule on two media types (no parameters).
func Compatible(declared, detected string) bool {
	if declared == detected {
		return true
	}
	dtyp, dsub, _ := strings.Cut(declared, "/")
	xml := declared == "application/xml" || declared == "text/xml" || strings.HasSuffix(dsub, "+xml")
	switch detected {
	case "text/html":
		return false // declared == detected was handled above
	case "text/xml":
		return xml
	}
	textual := dtyp == "text" || xml || declared == "application/json" || strings.HasSuffix(dsub, "+json") ||
		declared == "application/javascript" || declared == "application/x-ndjson" || declared == "application/yaml"
	ftyp, _, _ := strings.Cut(detected, "/")
	switch {
	case textual:
		return ftyp == "text"
	case dtyp == "image" || dtyp == "audio" || dtyp == "video":
		if detected == "application/octet-stream" || ftyp == dtyp {
			return true
		}
		// Ogg and some MP4 variants sniff under a neighbouring family.
		return detected == "application/ogg" && (dtyp == "audio" || dtyp == "video") ||
			(ftyp == "audio" || ftyp == "video") && (dtyp == "audio" || dtyp == "video")
	case declared == "application/octet-stream":
		return true
	case dtyp == "application":
		if detected == "application/octet-stream" || detected == "text/plain" {
			return true
		}
		return detected == "application/zip" && zipBased(dsub)
	}
	return false
}

func zipBased(sub string) bool {
	return strings.HasSuffix(sub, "+zip") || strings.HasPrefix(sub, "vnd.openxmlformats") ||
		strings.HasPrefix(sub, "vnd.oasis.opendocument") || sub == "java-archive" || sub == "x-zip-compressed" ||
		strings.HasPrefix(sub, "vnd.android.package")
}
