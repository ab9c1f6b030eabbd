package drivertest

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

const mib = 1 << 20

func (s *suite) multipart(t *testing.T) {
	mp, ok := s.d.(drivers.Multipart)
	if ok != s.caps.Multipart {
		t.Fatalf("Capabilities().Multipart = %v but implements drivers.Multipart = %v", s.caps.Multipart, ok)
	}
	if !ok {
		t.Log("Multipart: the driver has no multipart uploads (Capabilities().Multipart is false); nothing to check")
		return
	}
	t.Parallel()
	t.Run("RoundTrip", func(t *testing.T) { s.multipartRoundTrip(t, mp) })
	t.Run("Abort", func(t *testing.T) { s.multipartAbort(t, mp) })
}

// uploadPart presigns and uploads one part, returning the ETag the store
// gave (as sent, quotes and all).
func (s *suite) uploadPart(t *testing.T, mp drivers.Multipart, key, id string, n int, body []byte) string {
	t.Helper()
	g, err := mp.PresignPart(ctx(t), key, id, n, int64(len(body)), 5*time.Minute)
	if err != nil {
		t.Fatalf("PresignPart(%d): %v", n, err)
	}
	method := g.Method
	if method == "" {
		method = http.MethodPut
	}
	r := s.do(t, method, g.URL, g.Headers, body, -1)
	if !r.ok() {
		t.Fatalf("upload of part %d refused: %v", n, r)
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatalf("part %d: no ETag header in the answer", n)
	}
	return etag
}

func (s *suite) multipartRoundTrip(t *testing.T, mp drivers.Multipart) {
	key := s.key("multipart")
	id, err := mp.CreateMultipart(ctx(t), key, drivers.Constraints{ContentType: "video/mp4", MaxSize: 10*mib + 1024,
		Metadata: map[string]string{"album": "mp"}, Expires: 5 * time.Minute})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	sizes := []int{5 * mib, 5 * mib, 1024}
	var all []byte
	var parts []drivers.Part
	for i, size := range sizes {
		body := payload(size)
		all = append(all, body...)
		etag := s.uploadPart(t, mp, key, id, i+1, body)
		if i == 1 {
			// Complete must accept ETags with or without their quotes.
			etag = strings.Trim(etag, `"`)
		} else if !strings.HasPrefix(etag, `"`) {
			etag = `"` + etag + `"`
		}
		parts = append(parts, drivers.Part{Number: i + 1, ETag: etag})
	}
	listed, err := mp.ListParts(ctx(t), key, id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if len(listed) != len(sizes) {
		t.Fatalf("ListParts = %d parts, want %d", len(listed), len(sizes))
	}
	for i, p := range listed {
		if p.Number != i+1 || (p.Size != 0 && p.Size != int64(sizes[i])) || p.ETag == "" {
			t.Errorf("ListParts[%d] = %+v, want number %d size %d and an ETag", i, p, i+1, sizes[i])
		}
	}
	info, err := mp.CompleteMultipart(ctx(t), key, id, parts)
	if err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	s.kept(key, int64(len(all)))
	if info.Size != 0 && info.Size != int64(len(all)) {
		t.Errorf("CompleteMultipart size = %d, want %d", info.Size, len(all))
	}
	st, err := s.d.Stat(ctx(t), key)
	if err != nil {
		t.Fatalf("Stat after complete: %v", err)
	}
	if st.Size != int64(len(all)) || st.ContentType != "video/mp4" || st.Metadata["album"] != "mp" {
		t.Errorf("Stat after complete = size %d type %q meta %v, want %d video/mp4 album=mp", st.Size, st.ContentType, st.Metadata, len(all))
	}
	tail, err := s.d.ReadRange(ctx(t), key, int64(len(all)-2048), 2048)
	if err != nil {
		t.Fatalf("ReadRange of the assembled object: %v", err)
	}
	if !bytes.Equal(tail, all[len(all)-2048:]) {
		t.Errorf("the assembled object's last bytes differ from the parts'")
	}
}

func (s *suite) multipartAbort(t *testing.T, mp drivers.Multipart) {
	key := s.key("multipart-abort")
	id, err := mp.CreateMultipart(ctx(t), key, drivers.Constraints{ContentType: "application/octet-stream", MaxSize: 5 * mib, Expires: 5 * time.Minute})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	s.uploadPart(t, mp, key, id, 1, payload(5*mib))
	if err := mp.AbortMultipart(ctx(t), key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	parts, err := mp.ListParts(ctx(t), key, id)
	if err == nil && len(parts) > 0 {
		t.Errorf("ListParts after abort = %d parts, want an error or none", len(parts))
	}
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		t.Logf("ListParts after abort: %v (not drivers.ErrNotFound, accepted)", err)
	}
	s.absent(t, key)
}
