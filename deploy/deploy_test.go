// Package deploy_test checks what can be checked of the packaging on a
// machine that cannot pull container images: the binary the Dockerfile
// builds (CGO off) is static and runs as a non-root user, the example
// config loads, the release script stamps its version, and the Dockerfile,
// compose file, Makefile and release script agree on paths and flags.
package deploy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/upbroker/upbroker/internal/testenv"
)

const versionVar = "github.com/upbroker/upbroker/internal/version.Version"

// nobody is the uid and gid the binary runs as when the test runs as root.
const nobody = 65534

func randomVersion(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "v0.0.0-test." + hex.EncodeToString(b)
}

// worldDir makes a temporary folder that another uid can read and enter
// (t.TempDir is private to the test's user).
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "upbroker-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// asNonRoot runs cmd as nobody when the test is root; otherwise the test
// user is already not root.
func asNonRoot(cmd *exec.Cmd) {
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
}

func TestStaticBinaryRunsAsNonRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		testenv.Unavailable(t, "static ELF check needs linux, not %s", runtime.GOOS)
	}
	dir := worldDir(t)
	bin := filepath.Join(dir, "upbroker")
	version := randomVersion(t)
	// The same command as the Dockerfile's.
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X "+versionVar+"="+version, "-o", bin, "./cmd/upbroker")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if err := staticELF(bin); err != nil {
		t.Error(err)
	}
	// The check itself must catch a dynamic binary, or it proves nothing.
	if sh, err := exec.LookPath("sh"); err == nil {
		if real, err := filepath.EvalSymlinks(sh); err == nil && staticELF(real) == nil {
			t.Errorf("staticELF accepts %s, a dynamically linked program", real)
		}
	}

	// The example deploy config must load with the real loader and driver
	// specs, as nobody, from a world-readable copy.
	cfg, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "deploy", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	ticketKey := strings.Repeat("k", 48)
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"version", []string{"version"}, []string{version}},
		{"deploy config loads", []string{"config", "check", cfgPath}, []string{"minio", "images"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = dir
			cmd.Env = []string{
				"PATH=/usr/bin:/bin", "HOME=" + dir,
				"UPBROKER_TICKET_KEY=" + ticketKey,
				"MINIO_ACCESS_KEY=upbroker", "MINIO_SECRET_KEY=upbroker-secret",
			}
			asNonRoot(cmd)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("upbroker %s: %v\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), err, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			// Secrets from the environment must not be printed back.
			for _, secret := range []string{ticketKey, "upbroker-secret"} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output shows a secret")
				}
			}
		})
	}
}

// The release script builds, stamps and packs; one target (the host's,
// so the build cache serves it) proves the script, Go's own
// cross-compilation does the rest.
func TestReleaseScript(t *testing.T) {
	out := worldDir(t)
	version := randomVersion(t)
	target := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "scripts", "release.sh"), version)
	cmd.Env = append(os.Environ(), "RELEASE_TARGETS="+target, "RELEASE_DIST="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	name := "upbroker_" + version + "_" + runtime.GOOS + "_" + runtime.GOARCH
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sums), name+".tar.gz") {
		t.Errorf("SHA256SUMS lacks %s:\n%s", name, sums)
	}
	bin := extract(t, filepath.Join(out, name+".tar.gz"), name+"/upbroker", out)
	if err := staticELF(bin); err != nil && runtime.GOOS == "linux" {
		t.Error(err)
	}
	run := exec.Command(bin, "version")
	asNonRoot(run)
	got, err := run.Output()
	if err != nil {
		t.Fatalf("released binary: %v", err)
	}
	if strings.TrimSpace(string(got)) != version {
		t.Errorf("released binary says %q, want %q", got, version)
	}

	for _, bad := range []string{"", "v1 2", "v1;rm", "-x"} {
		cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "scripts", "release.sh"), bad)
		cmd.Env = append(os.Environ(), "RELEASE_TARGETS="+target, "RELEASE_DIST="+filepath.Join(out, "bad"))
		if b, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("release.sh %q succeeded, want refused:\n%s", bad, b)
		}
	}
}

// staticELF fails for a binary that needs a dynamic loader (PT_INTERP) or
// shared libraries (DT_NEEDED): it would not start on distroless/static.
func staticELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has a PT_INTERP program header: it needs a dynamic loader", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: read DT_NEEDED: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v (DT_NEEDED)", path, libs)
	}
	return nil
}

func extract(t *testing.T, archive, member, dir string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", archive, member)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != member {
			continue
		}
		if h.Mode&0o111 == 0 {
			t.Errorf("%s is not executable in the archive (mode %o)", member, h.Mode)
		}
		p := filepath.Join(dir, "extracted-upbroker")
		w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// The files that build and run the image must agree with each other and
// with the code: the version variable, the config path, the port.
func TestPackagingFilesAgree(t *testing.T) {
	root := testenv.RepoRoot()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dockerfile := read("Dockerfile")
	tests := []struct {
		file, want string
	}{
		{"Dockerfile", "-X " + versionVar + "="},
		{"scripts/release.sh", "-X " + versionVar + "="},
		{"Makefile", "-X " + versionVar + "="},
		{"Dockerfile", "CGO_ENABLED=0"},
		{"Dockerfile", "USER nonroot"},
		{"Dockerfile", `CMD ["serve", "--config", "/etc/upbroker/config.yaml"]`},
		{"Dockerfile", "EXPOSE 8080"},
		{"scripts/release.sh", "CGO_ENABLED=0"},
		{"deploy/upbroker.service", "DynamicUser=yes"},
		{"deploy/upbroker.service", "ProtectSystem=strict"},
		{"deploy/upbroker.service", "serve --config /etc/upbroker/config.yaml"},
	}
	for _, tc := range tests {
		if !strings.Contains(read(tc.file), tc.want) {
			t.Errorf("%s lacks %q", tc.file, tc.want)
		}
	}
	if strings.Contains(dockerfile, "USER root") {
		t.Error("Dockerfile switches to root")
	}

	var compose struct {
		Services map[string]struct {
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Command     any               `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(read("deploy/compose.yaml")), &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, s := range []string{"upbroker", "minio", "minio-setup"} {
		if _, ok := compose.Services[s]; !ok {
			t.Errorf("compose.yaml has no service %s", s)
		}
	}
	up := compose.Services["upbroker"]
	if !contains(up.Volumes, "./config.yaml:/etc/upbroker/config.yaml:ro") {
		t.Errorf("upbroker does not mount deploy/config.yaml at /etc/upbroker/config.yaml: %v", up.Volumes)
	}
	if !contains(up.Ports, "8080:8080") {
		t.Errorf("upbroker does not publish 8080: %v", up.Ports)
	}
	if compose.Services["minio"].Environment["MINIO_API_CORS_ALLOW_ORIGIN"] == "" {
		t.Error("minio has no MINIO_API_CORS_ALLOW_ORIGIN: browsers could not upload")
	}
	if !strings.Contains(read("deploy/compose.yaml"), "mc mb --ignore-existing local/uploads") {
		t.Error("minio-setup does not create the bucket")
	}

	var cfg struct {
		Server struct {
			Addr string `yaml:"addr"`
		} `yaml:"server"`
		Backends map[string]map[string]any `yaml:"backends"`
	}
	if err := yaml.Unmarshal([]byte(read("deploy/config.yaml")), &cfg); err != nil {
		t.Fatalf("deploy/config.yaml: %v", err)
	}
	if cfg.Server.Addr != "0.0.0.0:8080" {
		t.Errorf("deploy/config.yaml server.addr = %q, want 0.0.0.0:8080 (reachable in the container, EXPOSE 8080)", cfg.Server.Addr)
	}
	if b := cfg.Backends["minio"]; b == nil || b["bucket"] != "uploads" || b["endpoint"] != "http://minio:9000" {
		t.Errorf("deploy/config.yaml minio backend does not match the compose bucket and host: %v", b)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
