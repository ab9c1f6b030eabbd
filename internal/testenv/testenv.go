// Package testenv starts the real servers that integration tests run
// against (MinIO, fake-gcs-server, Azurite, Redis, Chromium) as child
// processes on 127.0.0.1, on free ports, and stops them when the test ends.
//
// The binaries are installed by scripts/ (make test-deps) into .cache/. When
// one is missing, a test skips, unless UPBROKER_INTEGRATION=1 (set by
// make test), where a missing server is a failure: under make test no
// integration test may skip.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Integration reports whether UPBROKER_INTEGRATION=1 is set.
func Integration() bool { return os.Getenv("UPBROKER_INTEGRATION") == "1" }

// Unavailable skips the test because a server cannot be had, or fails it
// when integration tests are required.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Integration() {
		t.Fatalf("integration test cannot run (UPBROKER_INTEGRATION=1, so this is a failure): %s; run `make test-deps`", msg)
	}
	t.Skipf("%s (set up with `make test-deps`; UPBROKER_INTEGRATION=1 makes this a failure)", msg)
}

// RepoRoot is the module's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CachePath is a path under the git-ignored .cache folder.
func CachePath(elem ...string) string {
	return filepath.Join(append([]string{RepoRoot(), ".cache"}, elem...)...)
}

// Binary finds an installed tool: .cache/bin first, then PATH.
func Binary(name string) (string, error) {
	p := CachePath("bin", name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	return exec.LookPath(name)
}

// FreePort asks the kernel for an unused TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proc is a child process started for a test.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	out  *LockedBuffer
	done chan struct{}
	err  error
}

// LockedBuffer collects output written from many goroutines (a child
// process, a server's logger) and can be read while writes go on.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a process in its own process group, and registers a cleanup
// that stops it (SIGTERM, then SIGKILL) and prints its output if the test
// failed.
func Start(t testing.TB, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, out: &LockedBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout = p.out
	p.Cmd.Stderr = p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, p.Output())
		}
	})
	return p
}

// Output is what the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process group and waits for it; calling it twice is safe.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	// Long enough for a graceful stop, upbroker's own included (its
	// server.drain_delay defaults to 5s); the servers that stop at once
	// do not wait for it.
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// WaitTCP waits until addr accepts connections, or the process dies, or the
// timeout passes.
func (p *Proc) WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.Name, addr, p.err, p.Output())
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within %v\n%s", p.Name, addr, timeout, p.Output())
}
