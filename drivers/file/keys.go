package file

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/upbroker/upbroker/drivers"
)

// maxKeyLen matches S3's limit, so a key valid here is valid everywhere.
const maxKeyLen = 1024

var (
	keyChars = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	// tempName matches the names fileblob gives its temporary files when they
	// live next to the object (Options.NoTempDir): "<key>.<hex nanos>.tmp".
	tempName = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)
)

// checkKey refuses any key that could leave the folder or collide with
// fileblob's own files. The broker makes keys from templates, but this
// driver turns keys into paths, so it trusts no one.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", drivers.ErrInvalid)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", drivers.ErrInvalid, maxKeyLen)
	case !keyChars.MatchString(key):
		return fmt.Errorf("%w: key %q has a character outside [A-Za-z0-9._/-]", drivers.ErrInvalid, key)
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//"):
		return fmt.Errorf("%w: key %q has a leading, trailing or double slash", drivers.ErrInvalid, key)
	case strings.Contains(key, ".."):
		return fmt.Errorf("%w: key %q contains \"..\"", drivers.ErrInvalid, key)
	case key == "." || strings.HasPrefix(key, "./") || strings.Contains(key, "/./") || strings.HasSuffix(key, "/."):
		return fmt.Errorf("%w: key %q has a \".\" segment", drivers.ErrInvalid, key)
	case strings.HasSuffix(key, ".attrs") || tempName.MatchString(key):
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
