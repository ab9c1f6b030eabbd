package file

import (
	"fmt"
	"strings"
	"sync"

	"github.com/upbroker/upbroker/drivers"
)

// maxKeyLen matches S3's limit, so a key valid here is valid everywhere.
const maxKeyLen = 1024

// keyChars tells whether key is one or more bytes of [A-Za-z0-9._/-]. A
// loop, not a regexp: every grant checks its key, and the regexp engine
// cost a tenth of a grant.
func keyChars(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return false
		}
	}
	return key != ""
}

// tempName tells whether name ends like the temporary files fileblob writes
// next to the object (Options.NoTempDir): "<key>.<hex nanos>.tmp", that is
// the regexp `\.[0-9a-f]+\.tmp$`.
func tempName(name string) bool {
	s, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	i := len(s)
	for i > 0 && ('0' <= s[i-1] && s[i-1] <= '9' || 'a' <= s[i-1] && s[i-1] <= 'f') {
		i--
	}
	return i < len(s) && i > 0 && s[i-1] == '.'
}

// checkKey refuses any key that could leave the folder or collide with
// fileblob's own files. The broker makes keys from templates, but this
// driver turns keys into paths, so it trusts no one.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", drivers.ErrInvalid)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", drivers.ErrInvalid, maxKeyLen)
	case !keyChars(key):
		return fmt.Errorf("%w: key %q has a character outside [A-Za-z0-9._/-]", drivers.ErrInvalid, key)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//"):
		return fmt.Errorf("%w: key %q has a leading, trailing or double slash", drivers.ErrInvalid, key)
	case strings.Contains(key, ".."):
		return fmt.Errorf("%w: key %q contains \"..\"", drivers.ErrInvalid, key)
	case key == "." || strings.HasPrefix(key, "./") || strings.Contains(key, "/./") || strings.HasSuffix(key, "/."):
		return fmt.Errorf("%w: key %q has a \".\" segment", drivers.ErrInvalid, key)
	case strings.HasSuffix(key, ".attrs") || tempName(key):
		// fileblob keeps metadata in "<key>.attrs" and writes "<key>.<n>.tmp"
		// while uploading; a key with those names would clash.
		return fmt.Errorf("%w: key %q ends like one of the store's own files (.attrs, .<hex>.tmp)", drivers.ErrInvalid, key)
	}
	return nil
}

// keyLocks serialises the commit of uploads to one key inside this process,
// so that "does it exist?" and "rename into place" happen as one step.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
