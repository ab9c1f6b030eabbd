package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// ---- 1. presign throughput ------------------------------------------------

type presignRow struct {
	Target      string  `json:"target"`
	Conns       int     `json:"conns"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	Errors      int     `json:"errors"`
	RatioOfBare float64 `json:"ratio_of_bare"`
}

type wrkSummary struct {
	Requests     int     `json:"requests"`
	DurationUS   int64   `json:"duration_us"`
	StatusErrors int     `json:"status_errors"`
	SocketErrors int     `json:"socket_errors"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
}

func presignPhase(o options, conns []int, bareAddr, brokerAddr, apiKey string) ([]presignRow, error) {
	type target struct {
		name, url, body, key string
	}
	body := func(profile string) string {
		return fmt.Sprintf(`{"filename":"photo.bin","content_type":"application/octet-stream","size":1048576,"profile":%q}`, profile)
	}
	targets := []target{
		{"bare net/http", "http://" + bareAddr + "/v1/uploads", body("file"), ""},
		{"upbroker file", "http://" + brokerAddr + "/v1/uploads", body("file"), apiKey},
		{"upbroker minio", "http://" + brokerAddr + "/v1/uploads", body("minio"), apiKey},
		{"upbroker s3", "http://" + brokerAddr + "/v1/uploads", body("s3"), apiKey},
	}
	var rows []presignRow
	bare := map[int]float64{}
	for _, c := range conns {
		// Interleave the targets at each connection count, so that a noisy
		// neighbour hurts all of them alike.
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, "[upbench] wrk %-15s c=%-3d %s\n", t.name, c, o.duration)
			s, err := runWrk(t.url, t.body, t.key, c, o.duration)
			if err != nil {
				return nil, fmt.Errorf("%s at %d connections: %w", t.name, c, err)
			}
			rps := float64(s.Requests) / (float64(s.DurationUS) / 1e6)
			row := presignRow{Target: t.name, Conns: c, RPS: rps,
				P50ms: s.P50us / 1000, P99ms: s.P99us / 1000, P999ms: s.P999us / 1000,
				Errors: s.StatusErrors + s.SocketErrors}
			if t.key == "" {
				bare[c] = rps
			}
			if bare[c] > 0 {
				row.RatioOfBare = rps / bare[c]
			}
			if row.Errors > 0 {
				return nil, fmt.Errorf("%s at %d connections: %d errors of %d requests (see bench/tmp/upbroker.log)", t.name, c, row.Errors, s.Requests)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func runWrk(url, body, key string, conns int, d time.Duration) (wrkSummary, error) {
	cmd := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(), "--latency",
		"-s", "bench/wrk/post.lua", url)
	cmd.Env = append(os.Environ(), "UPBENCH_BODY="+body, "UPBENCH_KEY="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkSummary{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "UPBENCH "); ok {
			var s wrkSummary
			if err := json.Unmarshal([]byte(rest), &s); err != nil {
				return s, fmt.Errorf("wrk summary: %w", err)
			}
			if s.Requests == 0 {
				return s, fmt.Errorf("wrk made no requests:\n%s", out)
			}
			return s, nil
		}
	}
	return wrkSummary{}, fmt.Errorf("no summary in wrk output:\n%s", out)
}

// ---- 2. direct versus proxied ---------------------------------------------

type serverCost struct {
	WallSeconds float64 `json:"wall_s"`
	CPUSeconds  float64 `json:"server_cpu_s"`
	PeakRSSMiB  float64 `json:"server_peak_rss_mib"`
	MiBps       float64 `json:"throughput_mib_s"`
}

type directResult struct {
	Files         int        `json:"files"`
	FileSizeBytes int64      `json:"file_size_bytes"`
	Parallel      int        `json:"parallel"`
	Upbroker      serverCost `json:"upbroker_direct"`
	Proxy         serverCost `json:"gin_proxy_2hop"`
	// Floor is the bare net/http handler answering the same two requests
	// per upload (grant, complete) with fixed JSON while the bytes go to
	// MinIO: the least CPU any broker's HTTP side can cost on this machine.
	Floor      serverCost `json:"bare_floor"`
	CPURatio   float64    `json:"proxy_cpu_over_upbroker_cpu"`
	FloorRatio float64    `json:"proxy_cpu_over_floor_cpu"`
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0}}

func directPhase(ctx context.Context, o options, bp *proc, brokerAddr, apiKey string, px *proc, proxyAddr string, bare *proc, bareAddr string, mc *minio.Client) (*directResult, error) {
	payload := make([]byte, o.fileSize)
	_, _ = rand.Read(payload)
	res := &directResult{Files: o.files, FileSizeBytes: o.fileSize, Parallel: o.parallel}

	measure := func(p *proc, one func(i int) error) (serverCost, error) {
		p.resetPeak()
		cpu0, err := p.cpuSeconds()
		if err != nil {
			return serverCost{}, err
		}
		t0 := time.Now()
		if err := parallel(o.files, o.parallel, one); err != nil {
			return serverCost{}, err
		}
		wall := time.Since(t0).Seconds()
		cpu1, _ := p.cpuSeconds()
		peak, _ := p.peakRSS()
		return serverCost{WallSeconds: wall, CPUSeconds: cpu1 - cpu0, PeakRSSMiB: float64(peak) / (1 << 20),
			MiBps: float64(o.fileSize) * float64(o.files) / (1 << 20) / wall}, nil
	}
	fmt.Fprintf(os.Stderr, "[upbench] direct: %d × %d bytes, %d at a time, through upbroker\n", o.files, o.fileSize, o.parallel)
	var err error
	res.Upbroker, err = measure(bp, func(i int) error {
		return uploadDirect(brokerAddr, apiKey, "minio", bytes.NewReader(payload), o.fileSize)
	})
	if err != nil {
		return nil, fmt.Errorf("direct uploads: %w", err)
	}
	fmt.Fprintf(os.Stderr, "[upbench] proxied: the same through the 2-hop Gin proxy\n")
	res.Proxy, err = measure(px, func(i int) error {
		return uploadProxy(proxyAddr, fmt.Sprintf("f%04d.bin", i), payload)
	})
	if err != nil {
		return nil, fmt.Errorf("proxied uploads: %w", err)
	}
	fmt.Fprintf(os.Stderr, "[upbench] floor: the same direct uploads, the two broker calls answered by the bare handler\n")
	res.Floor, err = measure(bare, func(i int) error {
		return uploadFloor(ctx, bareAddr, mc, fmt.Sprintf("floor/f%04d.bin", i), bytes.NewReader(payload), o.fileSize)
	})
	if err != nil {
		return nil, fmt.Errorf("floor uploads: %w", err)
	}
	// All three paths must really have stored every file.
	n := 0
	for obj := range mc.ListObjects(ctx, "bench", minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		if obj.Size == o.fileSize {
			n++
		}
	}
	if n < 3*o.files {
		return nil, fmt.Errorf("expected %d stored files of %d bytes, found %d", 3*o.files, o.fileSize, n)
	}
	if res.Upbroker.CPUSeconds > 0 {
		res.CPURatio = res.Proxy.CPUSeconds / res.Upbroker.CPUSeconds
	}
	if res.Floor.CPUSeconds > 0 {
		res.FloorRatio = res.Proxy.CPUSeconds / res.Floor.CPUSeconds
	}
	return res, nil
}

func parallel(n, width int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, width)
	for w := 0; w < width; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

type grant struct {
	ID     string `json:"id"`
	Upload *struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"upload"`
	CompleteURL string `json:"complete_url"`
}

// uploadDirect is what a client of upbroker does: grant, PUT straight to
// the store, complete.
func uploadDirect(brokerAddr, apiKey, profile string, body io.Reader, size int64) error {
	req, _ := http.NewRequest("POST", "http://"+brokerAddr+"/v1/uploads", strings.NewReader(fmt.Sprintf(
		`{"filename":"f.bin","content_type":"application/octet-stream","size":%d,"profile":%q}`, size, profile)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	var g grant
	if err := doJSON(req, 201, &g); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if g.Upload == nil {
		return fmt.Errorf("grant has no single upload (multipart?)")
	}
	put, _ := http.NewRequest(g.Upload.Method, g.Upload.URL, body)
	put.ContentLength = size
	for k, v := range g.Upload.Headers {
		put.Header.Set(k, v)
	}
	if err := doJSON(put, 0, nil); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	done, _ := http.NewRequest("POST", absURL(brokerAddr, g.CompleteURL), strings.NewReader("{}"))
	done.Header.Set("Content-Type", "application/json")
	done.Header.Set("X-API-Key", apiKey)
	if err := doJSON(done, 200, nil); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	return nil
}

// uploadFloor makes the same three requests as uploadDirect, but the two
// broker calls go to the bare handler (which answers fixed JSON) and the
// client presigns the PUT itself: what is left is the HTTP cost alone.
func uploadFloor(ctx context.Context, bareAddr string, mc *minio.Client, key string, body io.Reader, size int64) error {
	call := func(path string) error {
		req, _ := http.NewRequest("POST", "http://"+bareAddr+path, strings.NewReader(`{"filename":"f.bin","content_type":"application/octet-stream","size":4194304}`))
		req.Header.Set("Content-Type", "application/json")
		return doJSON(req, 201, nil)
	}
	if err := call("/v1/uploads"); err != nil {
		return fmt.Errorf("floor grant: %w", err)
	}
	u, err := mc.PresignedPutObject(ctx, "bench", key, 15*time.Minute)
	if err != nil {
		return err
	}
	put, _ := http.NewRequest("PUT", u.String(), body)
	put.ContentLength = size
	if err := doJSON(put, 0, nil); err != nil {
		return fmt.Errorf("floor upload: %w", err)
	}
	if err := call("/v1/uploads/x/complete"); err != nil {
		return fmt.Errorf("floor complete: %w", err)
	}
	return nil
}

func absURL(addr, u string) string {
	if strings.HasPrefix(u, "http") {
		return u
	}
	return "http://" + addr + u
}

// uploadProxy is the tutorial way: a multipart form to the app server.
func uploadProxy(proxyAddr, name string, payload []byte) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("name", name)
		fw, err := mw.CreateFormFile("file", name)
		if err == nil {
			_, err = fw.Write(payload)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", "http://"+proxyAddr+"/upload", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return doJSON(req, 201, nil)
}

func doJSON(req *http.Request, want int, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode/100 != 2) {
		return fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// ---- 3. file driver streaming ---------------------------------------------

type streamResult struct {
	SizeBytes      int64   `json:"size_bytes"`
	UploadMiBps    float64 `json:"upload_mib_s"`
	CpMiBps        float64 `json:"cp_mib_s"`
	Ratio          float64 `json:"upload_over_cp"`
	PeakRSSMiB     float64 `json:"broker_peak_rss_mib"`
	IdleRSSMiB     float64 `json:"broker_rss_before_mib"`
	BrokerCPUSecs  float64 `json:"broker_cpu_s"`
	UploadWallSecs float64 `json:"upload_wall_s"`
}

func streamPhase(o options, bp *proc, brokerAddr, apiKey string) (*streamResult, error) {
	src := filepath.Join(o.scratch, "big.bin")
	if st, err := os.Stat(src); err != nil || st.Size() != o.bigSize {
		fmt.Fprintf(os.Stderr, "[upbench] writing %d random bytes to %s\n", o.bigSize, src)
		if err := writeRandom(src, o.bigSize); err != nil {
			return nil, err
		}
	}
	defer os.Remove(filepath.Join(o.scratch, "big.copy"))
	// cp reads the source once so both sides start with it in page cache.
	_ = exec.Command("cat", src).Run()
	t0 := time.Now()
	if out, err := exec.Command("cp", src, filepath.Join(o.scratch, "big.copy")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cp: %w: %s", err, out)
	}
	_ = exec.Command("sync").Run()
	cpSecs := time.Since(t0).Seconds()
	_ = os.Remove(filepath.Join(o.scratch, "big.copy"))

	fmt.Fprintf(os.Stderr, "[upbench] streaming %d bytes through the file driver\n", o.bigSize)
	// Warm the broker up with one small upload first: what a running
	// broker holds anyway is not the big upload's cost.
	if err := uploadDirect(brokerAddr, apiKey, "file", strings.NewReader("warm"), 4); err != nil {
		return nil, fmt.Errorf("warm-up upload: %w", err)
	}
	bp.resetPeak()
	before, _ := bp.peakRSS()
	cpu0, _ := bp.cpuSeconds()
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t1 := time.Now()
	if err := uploadDirect(brokerAddr, apiKey, "file", bufio.NewReaderSize(f, 1<<20), o.bigSize); err != nil {
		return nil, fmt.Errorf("1 GiB upload: %w", err)
	}
	_ = exec.Command("sync").Run()
	upSecs := time.Since(t1).Seconds()
	cpu1, _ := bp.cpuSeconds()
	peak, _ := bp.peakRSS()
	mib := float64(o.bigSize) / (1 << 20)
	r := &streamResult{SizeBytes: o.bigSize, UploadMiBps: mib / upSecs, CpMiBps: mib / cpSecs,
		PeakRSSMiB: float64(peak) / (1 << 20), IdleRSSMiB: float64(before) / (1 << 20),
		BrokerCPUSecs: cpu1 - cpu0, UploadWallSecs: upSecs}
	r.Ratio = r.UploadMiBps / r.CpMiBps
	// Leave no gigabyte behind in the file driver's folder.
	_ = os.RemoveAll(filepath.Join(o.scratch, "files"))
	return r, nil
}

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 4<<20)
	_, _ = rand.Read(buf)
	for left := n; left > 0; {
		k := int64(len(buf))
		if left < k {
			k = left
		}
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		buf[0]++ // no two blocks alike, so nothing can dedupe them
		left -= k
	}
	return f.Close()
}

// ---- 4. Go micro-benchmarks -----------------------------------------------

type goBenchRow struct {
	Package  string  `json:"package"`
	Name     string  `json:"name"`
	NsOp     float64 `json:"ns_op"`
	BytesOp  float64 `json:"bytes_op"`
	AllocsOp float64 `json:"allocs_op"`
}

// benchLine reads one result line of go test -bench; b.SetBytes adds an
// MB/s column between ns/op and B/op.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+[\d.]+ MB/s)?(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

func goBenchPhase(pkgs string) ([]goBenchRow, error) {
	fmt.Fprintf(os.Stderr, "[upbench] go test -bench %s\n", pkgs)
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "1s"}, strings.Fields(pkgs)...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	var rows []goBenchRow
	pkg := ""
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(rest), "github.com/upbroker/upbroker/")
			continue
		}
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		r := goBenchRow{Package: pkg, Name: m[1]}
		r.NsOp, _ = strconv.ParseFloat(m[2], 64)
		r.BytesOp, _ = strconv.ParseFloat(m[3], 64)
		r.AllocsOp, _ = strconv.ParseFloat(m[4], 64)
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no benchmark results in:\n%s", out)
	}
	return rows, nil
}

// ---- output ---------------------------------------------------------------

func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nupbench — %d CPUs (%s), %s; %s\n", r.Machine.CPUs, r.Machine.Model, r.Machine.GoVer, r.Machine.Note)
	fmt.Fprintf(w, "\n1. POST /v1/uploads (auth api_key) vs a bare net/http handler, wrk -t1\n")
	fmt.Fprintf(w, "%-16s %6s %10s %9s %9s %9s %8s\n", "target", "conns", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "of bare")
	for _, p := range r.Presign {
		fmt.Fprintf(w, "%-16s %6d %10.0f %9.2f %9.2f %9.2f %7.0f%%\n", p.Target, p.Conns, p.RPS, p.P50ms, p.P99ms, p.P999ms, 100*p.RatioOfBare)
	}
	if d := r.Direct; d != nil {
		fmt.Fprintf(w, "\n2. %d files of %.0f MiB, %d at a time, to MinIO\n", d.Files, float64(d.FileSizeBytes)/(1<<20), d.Parallel)
		fmt.Fprintf(w, "%-22s %8s %12s %14s %10s\n", "path", "wall s", "server CPU s", "peak RSS MiB", "MiB/s")
		fmt.Fprintf(w, "%-22s %8.2f %12.2f %14.1f %10.0f\n", "upbroker (direct)", d.Upbroker.WallSeconds, d.Upbroker.CPUSeconds, d.Upbroker.PeakRSSMiB, d.Upbroker.MiBps)
		fmt.Fprintf(w, "%-22s %8.2f %12.2f %14.1f %10.0f\n", "Gin proxy (2-hop)", d.Proxy.WallSeconds, d.Proxy.CPUSeconds, d.Proxy.PeakRSSMiB, d.Proxy.MiBps)
		fmt.Fprintf(w, "%-22s %8.2f %12.2f %14.1f %10.0f\n", "bare floor (direct)", d.Floor.WallSeconds, d.Floor.CPUSeconds, d.Floor.PeakRSSMiB, d.Floor.MiBps)
		fmt.Fprintf(w, "proxy CPU / upbroker CPU = %.1f×; proxy CPU / bare floor CPU = %.1f× (the most any broker could reach here)\n", d.CPURatio, d.FloorRatio)
	}
	if s := r.Stream; s != nil {
		fmt.Fprintf(w, "\n3. %.0f MiB through the file driver\n", float64(s.SizeBytes)/(1<<20))
		fmt.Fprintf(w, "upload %.0f MiB/s, cp %.0f MiB/s (%.0f%% of cp); broker peak RSS %.1f MiB (%.1f before), CPU %.2f s\n",
			s.UploadMiBps, s.CpMiBps, 100*s.Ratio, s.PeakRSSMiB, s.IdleRSSMiB, s.BrokerCPUSecs)
	}
	if len(r.GoBench) > 0 {
		fmt.Fprintf(w, "\n4. Go benchmarks\n%-22s %-36s %12s %10s %10s\n", "package", "benchmark", "ns/op", "B/op", "allocs/op")
		for _, b := range r.GoBench {
			fmt.Fprintf(w, "%-22s %-36s %12.0f %10.0f %10.0f\n", b.Package, b.Name, b.NsOp, b.BytesOp, b.AllocsOp)
		}
	}
}
