package testenv

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// StartRedis runs Debian's redis-server on 127.0.0.1 on a free port, with
// persistence off, and stops it when the test ends. It returns host:port.
func StartRedis(t testing.TB) (addr string) {
	t.Helper()
	bin, err := Binary("redis-server")
	if err != nil {
		Unavailable(t, "redis-server not found (apt-get install redis-server)")
		return ""
	}
	port := FreePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	p := Start(t, "redis-server", nil, bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		// A test's own folder, so nothing is ever written into the tree.
		"--dir", t.TempDir(),
	)
	p.WaitTCP(t, addr, 15*time.Second)
	return addr
}
