// Package ticket makes the stateless upload tickets that tie a grant to its
// completion: the facts of one upload, in a compact binary layout, signed
// with HMAC-SHA256 and encoded base64url. Any broker replica that holds one
// of the keys can verify a ticket, so no state is kept between requests.
package ticket

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"
)

// version is the first byte of every ticket; a layout change bumps it so old
// tickets fail cleanly instead of decoding into the wrong fields.
const version = 1

// MinKeyLen is the shortest accepted signing key: shorter keys are guessable.
const MinKeyLen = 16

const macLen = sha256.Size

var (
	// ErrInvalid: the ticket is malformed or its signature does not verify
	// under any key. The broker answers 404: a forged id names nothing.
	ErrInvalid = errors.New("invalid ticket")
	// ErrExpired: the ticket is genuine but its grace period is over (410).
	ErrExpired = errors.New("ticket expired")
)

// Flags are yes/no facts of an upload.
type Flags uint8

// Flag bits.
const (
	// Sniff: completion compares the content with the declared type.
	Sniff Flags = 1 << iota
	// Post: the grant was a POST policy form, not a PUT.
	Post
	// Multipart: the upload is assembled from parts (UploadID is set).
	Multipart
)

// Ticket is what completion needs to know about one upload.
type Ticket struct {
	Key         string
	Backend     string
	Profile     string
	Principal   string
	ContentType string
	Size        int64
	// Checksum is the raw 32-byte SHA-256 the client declared, or nil.
	Checksum []byte
	UploadID string
	PartSize int64
	Parts    int
	Flags    Flags
	// Expires is when the grant's URL stops working (second precision).
	Expires time.Time
}

// Has tells whether a flag is set.
func (t *Ticket) Has(f Flags) bool { return t.Flags&f != 0 }

// Codec signs with its first key and verifies with any of them, so keys
// rotate: add the new key first, keep the old one until its tickets expire.
type Codec struct {
	keys  [][]byte
	pools []*sync.Pool
}

// scratch holds the payload and its encoding while a ticket is signed or
// verified; the MAC's hash.Hash interface would move any stack buffer to
// the heap anyway.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// New makes a codec from one or more keys.
func New(keys [][]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("ticket: at least one signing key is required")
	}
	c := &Codec{}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("ticket: key #%d is %d bytes, at least %d are required", i+1, len(k), MinKeyLen)
		}
		k := append([]byte(nil), k...)
		c.keys = append(c.keys, k)
		// HMAC state is costly to set up; pooling keeps Sign and Verify
		// nearly allocation-free.
		c.pools = append(c.pools, &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	}
	return c, nil
}

func (c *Codec) mac(i int, payload []byte, dst []byte) []byte {
	h := c.pools[i].Get().(hash.Hash)
	h.Reset()
	h.Write(payload)
	dst = h.Sum(dst)
	c.pools[i].Put(h)
	return dst
}

// Sign encodes and signs a ticket. The one allocation is the result.
func (c *Codec) Sign(t *Ticket) (string, error) {
	if len(t.Checksum) != 0 && len(t.Checksum) != sha256.Size {
		return "", fmt.Errorf("ticket: checksum must be %d bytes", sha256.Size)
	}
	if t.Size < 0 || t.PartSize < 0 || t.Parts < 0 {
		return "", errors.New("ticket: negative size")
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	buf := append((*bp)[:0], version, byte(t.Flags))
	buf = binary.AppendUvarint(buf, uint64(t.Expires.Unix()))
	buf = binary.AppendUvarint(buf, uint64(t.Size))
	buf = binary.AppendUvarint(buf, uint64(t.PartSize))
	buf = binary.AppendUvarint(buf, uint64(t.Parts))
	for _, s := range [...]string{t.Key, t.Backend, t.Profile, t.Principal, t.ContentType, t.UploadID} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = append(buf, byte(len(t.Checksum)))
	buf = append(buf, t.Checksum...)
	buf = c.mac(0, buf, buf)
	n := len(buf)
	buf = base64.RawURLEncoding.AppendEncode(buf, buf)
	*bp = buf
	return string(buf[n:]), nil
}

// maxEncoded bounds what Verify will even decode: no honest ticket is near it.
const maxEncoded = 8 << 10

// Verify decodes a ticket and checks its signature under every key. It
// does not look at the expiry; see Check.
func (c *Codec) Verify(s string) (*Ticket, error) {
	if len(s) == 0 || len(s) > maxEncoded {
		return nil, ErrInvalid
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	raw, err := base64.RawURLEncoding.AppendDecode((*bp)[:0], []byte(s))
	*bp = raw
	if err != nil || len(raw) < 2+macLen {
		return nil, ErrInvalid
	}
	payload, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	var want [macLen]byte
	ok := false
	for i := range c.keys {
		if hmac.Equal(c.mac(i, payload, want[:0]), sum) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, ErrInvalid
	}
	t, err := decode(payload)
	if err != nil {
		// A signed ticket that does not parse is a layout bug, but it is
		// still no ticket of ours.
		return nil, ErrInvalid
	}
	return t, nil
}

// Check verifies a ticket and refuses it once expiry+grace has passed.
func (c *Codec) Check(s string, now time.Time, grace time.Duration) (*Ticket, error) {
	t, err := c.Verify(s)
	if err != nil {
		return nil, err
	}
	if now.After(t.Expires.Add(grace)) {
		return t, ErrExpired
	}
	return t, nil
}

// reader walks a payload: varints from b, strings from s, which holds the
// same bytes. Every string field is a substring of s, so decoding costs one
// string allocation instead of one per field.
type reader struct {
	b   []byte
	s   string
	off int
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *reader) str(n uint64) string {
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	v := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return v
}

const maxInt64 = 1<<63 - 1

// decode parses a payload; it never panics, whatever the bytes.
func decode(p []byte) (*Ticket, error) {
	if len(p) < 2 || p[0] != version {
		return nil, ErrInvalid
	}
	t := &Ticket{Flags: Flags(p[1])}
	r := &reader{b: p[2:], s: string(p[2:])}
	exp := r.uvarint()
	size := r.uvarint()
	psize := r.uvarint()
	parts := r.uvarint()
	if exp > maxInt64 || size > maxInt64 || psize > maxInt64 || parts > 1<<31-1 {
		return nil, ErrInvalid
	}
	t.Expires = time.Unix(int64(exp), 0).UTC()
	t.Size, t.PartSize, t.Parts = int64(size), int64(psize), int(parts)
	for _, dst := range [...]*string{&t.Key, &t.Backend, &t.Profile, &t.Principal, &t.ContentType, &t.UploadID} {
		*dst = r.str(r.uvarint())
	}
	if cl := r.str(1); !r.bad {
		if cl[0] != 0 && cl[0] != sha256.Size {
			return nil, ErrInvalid
		}
		if cs := r.str(uint64(cl[0])); len(cs) > 0 {
			t.Checksum = []byte(cs)
		}
	}
	if r.bad || r.off != len(r.b) {
		return nil, ErrInvalid
	}
	return t, nil
}

// Derive makes a sub-key for another use of a ticket key (a driver's URL
// signing key), so one configured secret never signs two kinds of thing.
func Derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("upbroker derive v1\x00"))
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
