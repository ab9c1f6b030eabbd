package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type options struct {
	upbroker string
	minio    string
	scratch  string
	out      string
	duration time.Duration
	conns    string
	files    int
	fileSize int64
	parallel int
	bigSize  int64
	goBench  bool
	benchPkg string
}

// results is what bench/results.json holds.
type results struct {
	When     time.Time     `json:"when"`
	Machine  machine       `json:"machine"`
	Presign  []presignRow  `json:"presign"`
	Direct   *directResult `json:"direct_vs_proxy,omitempty"`
	Stream   *streamResult `json:"file_streaming,omitempty"`
	GoBench  []goBenchRow  `json:"go_benchmarks,omitempty"`
	Commands []string      `json:"commands"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	GoVer  string `json:"go"`
	Kernel string `json:"kernel"`
	Note   string `json:"note"`
}

func runMain() {
	var o options
	flag.StringVar(&o.upbroker, "upbroker", "bin/upbroker", "the upbroker binary to measure")
	flag.StringVar(&o.minio, "minio", ".cache/bin/minio", "the MinIO server binary")
	flag.StringVar(&o.scratch, "scratch", "bench/tmp", "scratch folder (git-ignored): logs, configs, big files")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the results")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each wrk run lasts")
	flag.StringVar(&o.conns, "conns", "1,16,64,256", "wrk connection counts")
	flag.IntVar(&o.files, "files", 200, "files uploaded in the direct-vs-proxy phase")
	var fileSize, bigSize string
	flag.StringVar(&fileSize, "file-size", "4MiB", "size of each file in the direct-vs-proxy phase")
	flag.IntVar(&o.parallel, "parallel", 16, "uploads at a time in the direct-vs-proxy phase")
	flag.StringVar(&bigSize, "big", "1GiB", "size of the file-driver streaming upload (0 skips)")
	flag.BoolVar(&o.goBench, "go-bench", true, "also run the Go micro-benchmarks")
	flag.StringVar(&o.benchPkg, "bench-pkgs", "./broker/... ./drivers/...", "packages whose Go benchmarks run")
	flag.Usage = usage
	flag.Parse()
	var err error
	if o.fileSize, err = parseSize(fileSize); err != nil {
		log.Fatalf("-file-size: %v", err)
	}
	if o.bigSize, err = parseSize(bigSize); err != nil {
		log.Fatalf("-big: %v", err)
	}
	if err := run(o); err != nil {
		log.Fatalf("upbench: %v", err)
	}
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mul    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			var n int64
			if _, err := fmt.Sscanf(strings.TrimSuffix(s, u.suffix), "%d", &n); err != nil || n < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return n * u.mul, nil
		}
	}
	return 0, fmt.Errorf("bad size %q", s)
}

func run(o options) error {
	if err := os.MkdirAll(o.scratch, 0o755); err != nil {
		return err
	}
	scratch, _ := filepath.Abs(o.scratch)
	o.scratch = scratch
	self, err := os.Executable()
	if err != nil {
		return err
	}
	res := &results{When: time.Now().UTC(), Machine: describeMachine()}
	ctx := context.Background()

	// MinIO, shared by every phase.
	access, secret := "benchaccess", randHex(16)
	minioAddr, _ := freeAddr()
	consoleAddr, _ := freeAddr()
	dataDir := filepath.Join(scratch, "minio-data")
	_ = os.RemoveAll(dataDir)
	mp, err := start(scratch, "minio", []string{"MINIO_ROOT_USER=" + access, "MINIO_ROOT_PASSWORD=" + secret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off"},
		o.minio, "server", dataDir, "--address", minioAddr, "--console-address", consoleAddr, "--quiet")
	if err != nil {
		return err
	}
	defer mp.stop()
	if err := mp.waitHTTP("http://"+minioAddr+"/minio/health/ready", 60*time.Second); err != nil {
		return err
	}
	mc, err := minio.New(minioAddr, &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
	if err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("make bucket: %w", err)
	}

	// upbroker with the file, minio and s3 drivers, behind api_key auth.
	apiKey := "upb_bench_" + randHex(16)
	digest := sha256.Sum256([]byte(apiKey))
	brokerAddr, _ := freeAddr()
	cfgPath := filepath.Join(scratch, "bench.yaml")
	cfg := fmt.Sprintf(brokerConfig, brokerAddr, brokerAddr, hex.EncodeToString(digest[:]),
		filepath.Join(scratch, "files"), minioAddr, minioAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(scratch, "files"))
	_ = os.MkdirAll(filepath.Join(scratch, "files"), 0o755)
	brokerEnv := []string{"UPBENCH_TICKET_KEY=" + randHex(32), "UPBENCH_ACCESS_KEY=" + access, "UPBENCH_SECRET_KEY=" + secret}
	bp, err := start(scratch, "upbroker", brokerEnv, o.upbroker, "serve", "--config", cfgPath, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer bp.stop()
	if err := bp.waitHTTP("http://"+brokerAddr+"/readyz", 30*time.Second); err != nil {
		return err
	}

	bareAddr, _ := freeAddr()
	bare, err := start(scratch, "bare", nil, self, "bare", "-addr", bareAddr)
	if err != nil {
		return err
	}
	defer bare.stop()
	if err := bare.waitTCP(bareAddr, 10*time.Second); err != nil {
		return err
	}

	// 1. Presign throughput.
	conns, err := parseConns(o.conns)
	if err != nil {
		return err
	}
	res.Commands = append(res.Commands, fmt.Sprintf("wrk -t1 -c<N> -d%s --latency -s bench/wrk/post.lua <url>", o.duration))
	res.Presign, err = presignPhase(o, conns, bareAddr, brokerAddr, apiKey)
	if err != nil {
		return err
	}

	// 2. Direct versus proxied.
	proxyAddr, _ := freeAddr()
	px, err := start(scratch, "proxy", []string{"UPBENCH_ACCESS_KEY=" + access, "UPBENCH_SECRET_KEY=" + secret},
		self, "proxy", "-addr", proxyAddr, "-endpoint", minioAddr, "-bucket", "bench")
	if err != nil {
		return err
	}
	defer px.stop()
	if err := px.waitTCP(proxyAddr, 10*time.Second); err != nil {
		return err
	}
	res.Direct, err = directPhase(ctx, o, bp, brokerAddr, apiKey, px, proxyAddr, bare, bareAddr, mc)
	if err != nil {
		return err
	}

	// 3. File driver streaming.
	if o.bigSize > 0 {
		// A fresh broker process, so that its peak RSS is the upload's own
		// and not what the load phases left in the Go heap.
		bp.stop()
		bp, err = start(scratch, "upbroker-stream", brokerEnv, o.upbroker, "serve", "--config", cfgPath, "--log-level", "warn")
		if err != nil {
			return err
		}
		defer bp.stop()
		if err := bp.waitHTTP("http://"+brokerAddr+"/readyz", 30*time.Second); err != nil {
			return err
		}
		res.Stream, err = streamPhase(o, bp, brokerAddr, apiKey)
		if err != nil {
			return err
		}
	}

	// 4. Go micro-benchmarks.
	if o.goBench {
		res.Commands = append(res.Commands, "go test -run '^$' -bench . -benchmem "+o.benchPkg)
		res.GoBench, err = goBenchPhase(o.benchPkg)
		if err != nil {
			return err
		}
	}

	printTable(os.Stdout, res)
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", o.out)
	return nil
}

const brokerConfig = `# written by upbench
server:
  addr: %s
  public_url: http://%s
  demo_page: false
secrets:
  ticket_keys: ["${UPBENCH_TICKET_KEY}"]
auth:
  mode: api_key
  api_keys:
    - {name: bench, sha256: "%s"}
backends:
  local: {driver: file, path: "%s"}
  minio:
    driver: minio
    endpoint: http://%s
    bucket: bench
    access_key: ${UPBENCH_ACCESS_KEY}
    secret_key: ${UPBENCH_SECRET_KEY}
  s3:
    driver: s3
    endpoint: http://%s
    region: us-east-1
    path_style: "true"
    bucket: bench
    access_key: ${UPBENCH_ACCESS_KEY}
    secret_key: ${UPBENCH_SECRET_KEY}
profiles:
  file: {backend: local, content_types: [application/octet-stream], max_size: 2GiB, expires: 15m}
  minio: {backend: minio, content_types: [application/octet-stream], max_size: 64MiB, expires: 15m}
  s3: {backend: s3, content_types: [application/octet-stream], max_size: 64MiB, expires: 15m}
default_profile: file
`

func parseConns(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err != nil || n < 1 {
			return nil, fmt.Errorf("-conns: bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version(),
		Note: "shared, noisy VM: load tool and server share the same cores; compare ratios within one run, not absolute numbers across runs"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m.Model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}
