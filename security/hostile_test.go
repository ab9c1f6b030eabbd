package security

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/internal/testenv"
)

// Fixed facts of the suite's config.
const (
	backendName = "store"
	jwtIssuer   = "https://id.upbroker.test"
	jwtAudience = "upbroker"
	jwtSubject  = "jwt-user"
	imagesMax   = 1 << 20
	tenMB       = 10 << 20
)

// want is what one row must get back. code is the v1 API's error code; it
// is empty for a success and for Companion's routes, whose error body is
// {"error": "text"} (checked against msg instead).
type want struct {
	status int
	code   string
	field  string
	msg    string
}

// row is one request of the table. Rows run in order: the legitimate ones
// leave grants behind (s.grants) that later hostile rows attack.
type row struct {
	name string
	req  func(s *suite) *http.Request
	// raw sends the request over a bare connection (bodies the server
	// refuses before reading them).
	raw  bool
	want want
	// minio replaces want in the MinIO run, where there is no /v1/blob/
	// route and multipart uploads exist.
	minio *want
	then  func(t *testing.T, s *suite, r *response)
}

// suite is the state of one run: two brokers (api_key and jwt) over one
// store, the callers' credentials, and what the legitimate rows made.
type suite struct {
	t      *testing.T
	driver string
	api    *instance
	jwt    *instance
	keys   map[string]apiKey
	png    []byte
	grants map[string]*grant
	// stored are the keys that legitimate rows left in the store.
	stored []string
	tokens map[string]string
	// rsaPEM is the public key file's content (an HS256 secret in the
	// algorithm-confusion attack).
	rsaPEM []byte
}

func TestHostile(t *testing.T) {
	for _, driver := range []string{"file", "minio"} {
		t.Run(driver, func(t *testing.T) { runHostile(t, driver) })
	}
}

func runHostile(t *testing.T, driver string) {
	s := &suite{t: t, driver: driver, keys: map[string]apiKey{}, png: pngBytes(t), grants: map[string]*grant{}, tokens: map[string]string{}}
	for _, who := range []string{"alice", "bob", "carol", "dave"} {
		s.keys[who] = newAPIKey(t)
	}
	backend := s.backendYAML(t)
	ticketKey := randomHex(t, 32)
	pubFile := s.makeJWTKeys(t)

	s.api = startBroker(t, func(publicURL string) string {
		return s.brokerYAML(publicURL, ticketKey, backend, fmt.Sprintf(`auth:
  mode: api_key
  api_keys:
    - {name: alice, sha256: %s}
    - {name: bob, sha256: %s}
    - {name: carol, sha256: %s, profiles: [docs]}
    - {name: dave, sha256: %s}
compat:
  companion: {enabled: true, path: /s3, profile: images}
`, s.keys["alice"].Digest, s.keys["bob"].Digest, s.keys["carol"].Digest, s.keys["dave"].Digest))
	})
	s.jwt = startBroker(t, func(publicURL string) string {
		return s.brokerYAML(publicURL, ticketKey, backend, fmt.Sprintf(`auth:
  mode: jwt
  jwt:
    public_key_file: %s
    issuer: %s
    audience: %s
    profiles_claim: upload_profiles
`, pubFile, jwtIssuer, jwtAudience))
	})

	rows := hostileRows()
	if len(rows) < 60 {
		t.Fatalf("the suite has %d rows; at least 60 are required", len(rows))
	}
	hostile := 0
	for _, r := range rows {
		if !strings.HasPrefix(r.name, "legit") {
			hostile++
		}
	}
	t.Logf("%d rows, %d of them hostile, over the %s driver", len(rows), hostile, driver)
	for _, r := range rows {
		if !t.Run(r.name, func(t *testing.T) { s.run(t, r) }) && strings.HasPrefix(r.name, "legit") {
			t.Fatalf("legitimate row %q failed; later rows depend on it", r.name)
		}
	}

	// The store holds exactly what the legitimate rows completed: no
	// hostile row, and no refused or aborted upload, left anything.
	got := storeKeys(t, s.api.Backends[backendName])
	t.Logf("store after the suite: %q", got)
	want := slices.Clone(s.stored)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("store holds %q; the legitimate rows made only %q", got, want)
	}
	for _, in := range []*instance{s.api, s.jwt} {
		if failed := in.Errors.list(); len(failed) > 0 {
			t.Errorf("the broker at %s answered with 5xx: %q", in.URL, failed)
		}
	}

	// Nothing a caller proved itself with, and no ticket, reached the
	// logs of a session that was attacked with all of them.
	secrets := map[string]string{"ticket key": ticketKey, "valid JWT": s.tokens["valid"]}
	for who, k := range s.keys {
		secrets["API key of "+who] = k.Key
	}
	for label, g := range s.grants {
		secrets["ticket of "+label] = g.ID
	}
	if sk := secretKeyOf(backend); sk != "" {
		secrets["store secret_key"] = sk
	}
	logs := s.api.Logs.String() + s.jwt.Logs.String()
	for what, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("the %s appears in the brokers' logs", what)
		}
	}
}

// secretKeyOf finds secret_key in a backend's YAML block.
func secretKeyOf(backendYAML string) string {
	for _, line := range strings.Split(backendYAML, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "secret_key: "); ok {
			return v
		}
	}
	return ""
}

func (s *suite) run(t *testing.T, r row) {
	// Builders fail the row they build, from the row's own goroutine.
	parent := s.t
	s.t = t
	defer func() { s.t = parent }()
	req := r.req(s)
	var resp *response
	if r.raw {
		resp = doRaw(t, req)
	} else {
		resp = do(t, req)
	}
	w := r.want
	if s.driver == "minio" && r.minio != nil {
		w = *r.minio
	}
	if resp.Status != w.status {
		t.Fatalf("%s %s: status %d, want %d; body: %.600s", req.Method, req.URL.Path, resp.Status, w.status, resp.Body)
	}
	if resp.Status >= 400 {
		e, ok := resp.err()
		if !ok {
			t.Fatalf("status %d without an error body: %.300s", resp.Status, resp.Body)
		}
		switch {
		case w.code == "" && !e.Companion:
			t.Errorf("error %+v: want Companion's {\"error\": \"...\"} shape", e)
		case w.code != "" && e.Code != w.code:
			t.Errorf("error code %q, want %q (message %q)", e.Code, w.code, e.Message)
		}
		if !e.Companion && e.Field != w.field {
			t.Errorf("error field %q, want %q (message %q)", e.Field, w.field, e.Message)
		}
		if w.msg != "" && !strings.Contains(e.Message, w.msg) {
			t.Errorf("error message %q does not say %q", e.Message, w.msg)
		}
		if resp.Status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		if resp.Status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	if r.then != nil {
		r.then(t, s, resp)
	}
}

func (s *suite) backendYAML(t *testing.T) string {
	if s.driver == "file" {
		return fmt.Sprintf("  %s: {driver: file, path: %q}\n", backendName, t.TempDir())
	}
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "hostile")
	return fmt.Sprintf(`  %s:
    driver: minio
    endpoint: %s
    region: us-east-1
    bucket: %s
    access_key: %s
    secret_key: %s
`, backendName, m.Endpoint, bucket, m.AccessKey, m.SecretKey)
}

// brokerYAML is the config both brokers share but for auth. Limits are
// high enough that only the quota rows meet them.
func (s *suite) brokerYAML(publicURL, ticketKey, backend, authYAML string) string {
	u, _ := url.Parse(publicURL)
	return fmt.Sprintf(`server:
  addr: %s
  public_url: %s
  demo_page: false
secrets:
  ticket_keys: [%q]
%s
rate_limit:
  store: memory
  grants_per_minute: 6000
  burst: 1000
  bytes_per_day: 100MiB
backends:
%s
profiles:
  images:
    backend: %s
    content_types: [image/png, image/jpeg]
    max_size: %d
    sniff: true
  docs:
    backend: %s
    content_types: [text/plain]
    max_size: 64KiB
  big:
    backend: %s
    content_types: [application/octet-stream]
    max_size: 64MiB
    multipart_threshold: 5MiB
    part_size: 5MiB
  bulk:
    backend: %s
    content_types: [application/octet-stream]
    max_size: 80MiB
    multipart_threshold: 100MiB
default_profile: images
`, u.Host, publicURL, ticketKey, authYAML, backend, backendName, imagesMax, backendName, backendName, backendName)
}

// makeJWTKeys writes the RS256 public key file the jwt broker trusts, and
// signs the suite's tokens: one valid, the rest forged or out of date.
func (s *suite) makeJWTKeys(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	s.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "jwt-public.pem")
	if err := os.WriteFile(path, s.rsaPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"sub": jwtSubject, "iss": jwtIssuer, "aud": jwtAudience,
			"exp": now.Add(10 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
			"upload_profiles": []string{"images"},
		}
		if change != nil {
			change(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, k any, c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, c).SignedString(k)
		if err != nil {
			t.Fatalf("sign %s: %v", m.Alg(), err)
		}
		return tok
	}
	s.tokens["valid"] = sign(jwt.SigningMethodRS256, key, claims(nil))
	s.tokens["none"] = sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
	s.tokens["hs256-public-key"] = sign(jwt.SigningMethodHS256, s.rsaPEM, claims(nil))
	s.tokens["rs512"] = sign(jwt.SigningMethodRS512, key, claims(nil))
	s.tokens["other-key"] = sign(jwt.SigningMethodRS256, other, claims(nil))
	s.tokens["expired"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) {
		c["exp"] = now.Add(-time.Hour).Unix()
		c["nbf"] = now.Add(-2 * time.Hour).Unix()
	}))
	s.tokens["not-yet"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))
	s.tokens["wrong-aud"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" }))
	s.tokens["wrong-iss"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))
	s.tokens["no-exp"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { delete(c, "exp") }))
	s.tokens["no-sub"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { delete(c, "sub") }))
	s.tokens["sub-traversal"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { c["sub"] = "../../alice\u202e/x" }))
	s.tokens["docs-only"] = sign(jwt.SigningMethodRS256, key, claims(func(c jwt.MapClaims) { c["upload_profiles"] = []string{"docs"} }))
	// A genuine signature over a payload that names someone else.
	parts := strings.Split(s.tokens["valid"], ".")
	forged, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["sub"] = "alice" }))
	s.tokens["swapped-payload"] = parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	s.tokens["truncated"] = s.tokens["valid"][:len(s.tokens["valid"])-12]
	return path
}

// ---- request builders ----

func (s *suite) credential(who string) string {
	if who == "" {
		return ""
	}
	k, ok := s.keys[who]
	if !ok {
		s.t.Fatalf("no key for %q", who)
	}
	return k.Key
}

func (s *suite) req(method, who, target, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := newRequest(s.t, method, s.api.URL, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+s.credential(who))
	}
	return req
}

func postReq(who, target, body string) func(*suite) *http.Request {
	return func(s *suite) *http.Request { return s.req(http.MethodPost, who, target, body) }
}

func getReq(who, target string) func(*suite) *http.Request {
	return func(s *suite) *http.Request { return s.req(http.MethodGet, who, target, "") }
}

// grantAs is POST /v1/uploads with a body.
func grantAs(who, body string) func(*suite) *http.Request {
	return func(s *suite) *http.Request { return s.req(http.MethodPost, who, "/v1/uploads", body) }
}

// grantWith is POST /v1/uploads with a valid body and the given headers.
func grantWith(header map[string][]string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		req := s.req(http.MethodPost, "", "/v1/uploads", s.pngGrantBody(""))
		for k, vs := range header {
			for _, v := range vs {
				req.Header.Add(k, s.expand(v))
			}
		}
		return req
	}
}

// expand replaces {alice} (and so on) with that caller's key.
func (s *suite) expand(v string) string {
	for who, k := range s.keys {
		v = strings.ReplaceAll(v, "{"+who+"}", k.Key)
		v = strings.ReplaceAll(v, "{"+who+".digest}", k.Digest)
	}
	return v
}

func (s *suite) pngGrantBody(extra string) string {
	return fmt.Sprintf(`{"filename":"cat.png","content_type":"image/png","size":%d%s}`, len(s.png), extra)
}

// grantPNG asks for the suite's PNG, with extra fields spliced in.
func grantPNG(who, extra string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		return s.req(http.MethodPost, who, "/v1/uploads", s.pngGrantBody(extra))
	}
}

// field is a grant body with one field replaced by raw JSON.
func field(name, rawJSON string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		m := map[string]string{
			"filename": `"cat.png"`, "content_type": `"image/png"`, "size": fmt.Sprint(len(s.png)),
		}
		m[name] = rawJSON
		var parts []string
		for _, k := range []string{"filename", "content_type", "size", "profile", "checksum_sha256", "metadata"} {
			if v, ok := m[k]; ok {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
		}
		return s.req(http.MethodPost, "alice", "/v1/uploads", "{"+strings.Join(parts, ",")+"}")
	}
}

func (s *suite) grant(label string) *grant {
	g := s.grants[label]
	if g == nil {
		s.t.Fatalf("no grant %q: an earlier legitimate row failed", label)
	}
	return g
}

// withTicket builds a request on /v1/uploads/{id}{suffix} from a grant's
// ticket, changed by mangle.
func withTicket(method, who, label string, mangle func(string) string, suffix, body string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		id := s.grant(label).ID
		if mangle != nil {
			id = mangle(id)
		}
		return s.req(method, who, "/v1/uploads/"+id+suffix, body)
	}
}

// forged builds a request on a ticket signed by the test itself.
func forged(method, who string, key []byte, t func(s *suite) *ticket.Ticket, suffix, body string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		k := key
		if k == nil {
			k = s.api.keys[0]
		}
		c, err := ticket.New([][]byte{k})
		if err != nil {
			s.t.Fatal(err)
		}
		id, err := c.Sign(t(s))
		if err != nil {
			s.t.Fatal(err)
		}
		return s.req(method, who, "/v1/uploads/"+id+suffix, body)
	}
}

// upload sends body to a grant's signed URL, with the headers it lists.
func upload(label string, body func(s *suite) []byte) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		g := s.grant(label)
		if g.Upload == nil {
			s.t.Fatalf("grant %q has no single upload", label)
		}
		req := newRequest(s.t, g.Upload.Method, s.api.URL, g.Upload.URL, bytes.NewReader(body(s)))
		for k, v := range g.Upload.Headers {
			req.Header.Set(k, v)
		}
		return req
	}
}

// blob builds a request on the file driver's /v1/blob/ route for a
// grant's key and signature. Under MinIO the signed URL points at MinIO,
// so the same path names a route the broker does not have.
func blob(method, label string, change func(path, query string) (string, string), body func(*suite) []byte, header map[string]string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		g := s.grant(label)
		u, err := url.Parse(g.Upload.URL)
		if err != nil {
			s.t.Fatal(err)
		}
		path, query := "/v1/blob/"+backendName+"/"+pathEscapeKey(g.Key), u.RawQuery
		if change != nil {
			path, query = change(path, query)
		}
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body(s))
		}
		req := newRequest(s.t, method, s.api.URL, path+"?"+query, r)
		for k, v := range g.Upload.Headers {
			req.Header.Set(k, v)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return req
	}
}

func (s *suite) jwtGrant(token, body string) *http.Request {
	req := newRequest(s.t, http.MethodPost, s.jwt.URL, "/v1/uploads", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func jwtRow(name, token string, w want) row {
	return row{name: "jwt: " + name, want: w, req: func(s *suite) *http.Request {
		return s.jwtGrant(s.tokens[token], s.pngGrantBody(""))
	}}
}

// companion builds a request on the Companion routes; {own} and {bob}
// in target become a key alice owns and one bob owns.
func companion(method, who, target, body string) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		target = strings.ReplaceAll(target, "{own}", url.QueryEscape(s.grant("alice-1").Key))
		target = strings.ReplaceAll(target, "{bob}", url.QueryEscape(s.grant("bob-1").Key))
		return s.req(method, who, "/s3"+target, body)
	}
}

// big is a request with a 10 MB body; chunked leaves out Content-Length,
// so only a reading limit can stop it.
func big(method, who, target, contentType string, chunked bool) func(*suite) *http.Request {
	return func(s *suite) *http.Request {
		body := bytes.Repeat([]byte("A"), tenMB)
		var r io.Reader = bytes.NewReader(body)
		if chunked {
			r = io.MultiReader(r) // hides the length from http.NewRequest
		}
		var req *http.Request
		if strings.HasPrefix(target, "blob:") {
			req = blob(method, strings.TrimPrefix(target, "blob:"), nil, nil, nil)(s)
			req.Body = io.NopCloser(r)
			req.ContentLength = int64(len(body))
		} else {
			req = newRequest(s.t, method, s.api.URL, target, r)
			req.Header.Set("Content-Type", contentType)
			if who != "" {
				req.Header.Set("Authorization", "Bearer "+s.credential(who))
			}
		}
		if chunked {
			req.ContentLength = -1
		}
		return req
	}
}

// ---- checks of successful rows ----

// safeKey is the only shape of key the images profile may make for
// alice: a template, a uuid and an optional clean extension.
var safeKey = regexp.MustCompile(`^images/alice/[0-9a-f]{32}(\.[a-z0-9]{1,10})?$`)

// keepGrant records a 201's grant under label and checks its key.
func keepGrant(label string, keyRE *regexp.Regexp) func(*testing.T, *suite, *response) {
	return func(t *testing.T, s *suite, r *response) {
		var g grant
		if err := json.Unmarshal(r.Body, &g); err != nil || g.ID == "" || g.Key == "" {
			t.Fatalf("grant body %s: %v", r.Body, err)
		}
		if keyRE != nil && !keyRE.MatchString(g.Key) {
			t.Errorf("key %q does not match %s", g.Key, keyRE)
		}
		s.grants[label] = &g
	}
}

// keyIs checks the key a filename trick produced: the template's shape,
// and the extension (if any) that the name really ends with.
func keyIs(ext string) func(*testing.T, *suite, *response) {
	return func(t *testing.T, s *suite, r *response) {
		var g grant
		if err := json.Unmarshal(r.Body, &g); err != nil {
			t.Fatal(err)
		}
		if !safeKey.MatchString(g.Key) {
			t.Fatalf("key %q is not a safe key", g.Key)
		}
		if got := g.Key[len("images/alice/")+32:]; got != ext {
			t.Errorf("key %q has extension %q, want %q", g.Key, got, ext)
		}
	}
}

// completed checks a 200 completion and records the object as legitimate.
func completed(label string) func(*testing.T, *suite, *response) {
	return func(t *testing.T, s *suite, r *response) {
		var c struct {
			Key         string `json:"key"`
			Size        int64  `json:"size"`
			ContentType string `json:"content_type"`
		}
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatal(err)
		}
		g := s.grant(label)
		if c.Key != g.Key || c.Size != int64(len(s.png)) || c.ContentType != "image/png" {
			t.Errorf("completion %+v, want key %s, %d bytes of image/png", c, g.Key, len(s.png))
		}
		if !slices.Contains(s.stored, g.Key) {
			s.stored = append(s.stored, g.Key)
		}
	}
}

// noCRLF checks that no string in a JSON answer carries CR or LF.
func noCRLF(t *testing.T, _ *suite, r *response) {
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if strings.ContainsAny(x, "\r\n") {
				t.Errorf("answer carries CR/LF: %q", x)
			}
		case map[string]any:
			for k, e := range x {
				walk(k)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// ---- manglers ----

func flipMiddle(id string) string {
	b := []byte(id)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func nested(depth int) string {
	return `{"filename":"a.png","content_type":"image/png","size":10,"metadata":{"a":` +
		strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
}

func metadataJSON(n, valueLen int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf(`"k%d":%q`, i, strings.Repeat("v", valueLen)))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

var (
	notFound     = want{status: http.StatusNotFound, code: "not_found"}
	unauthorized = func(msg string) want { return want{status: http.StatusUnauthorized, code: "unauthorized", msg: msg} }
	badField     = func(f string) want { return want{status: http.StatusBadRequest, code: "invalid_request", field: f} }
	badFieldMsg  = func(f, msg string) want {
		return want{status: http.StatusBadRequest, code: "invalid_request", field: f, msg: msg}
	}
	created = want{status: http.StatusCreated}
	compErr = func(status int, msg string) want { return want{status: status, msg: msg} }
)

func hostileRows() []row {
	zeroKey := func(s *suite) string { return "images/alice/" + strings.Repeat("0", 32) + ".png" }
	return []row{
		// ---- legitimate grants, uploads and completions ----
		{name: "legit: alice grants a PNG", req: grantPNG("alice", `,"metadata":{"album":"x"}`), want: created, then: keepGrant("alice-1", safeKey)},
		{name: "legit: alice uploads it", req: upload("alice-1", func(s *suite) []byte { return s.png }), want: want{status: http.StatusOK}},
		{name: "legit: alice completes it", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", "{}"), want: want{status: http.StatusOK}, then: completed("alice-1")},
		{name: "legit: alice completes it again, same answer", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", ""), want: want{status: http.StatusOK}, then: completed("alice-1")},
		{name: "legit: bob grants a PNG with X-API-Key", req: func(s *suite) *http.Request {
			r := s.req(http.MethodPost, "", "/v1/uploads", s.pngGrantBody(""))
			r.Header.Set("X-API-Key", s.keys["bob"].Key)
			return r
		}, want: created, then: keepGrant("bob-1", regexp.MustCompile(`^images/bob/[0-9a-f]{32}\.png$`))},
		{name: "legit: bob uploads it", req: upload("bob-1", func(s *suite) []byte { return s.png }), want: want{status: http.StatusOK}},
		{name: "legit: bob completes it", req: withTicket(http.MethodPost, "bob", "bob-1", nil, "/complete", "{}"), want: want{status: http.StatusOK}, then: completed("bob-1")},
		{name: "legit: alice downloads her own object", req: func(s *suite) *http.Request {
			r := s.req(http.MethodGet, "alice", "/v1/downloads/"+pathEscapeKey(s.grant("alice-1").Key), "")
			r.Header.Set("Accept", "application/json")
			return r
		}, want: want{status: http.StatusOK}, then: func(t *testing.T, s *suite, r *response) {
			var d struct{ URL string }
			if err := json.Unmarshal(r.Body, &d); err != nil || d.URL == "" {
				t.Errorf("download answer %s: %v", r.Body, err)
			}
		}},
		{name: "legit: alice grants a PNG she will abort", req: grantPNG("alice", ""), want: created, then: keepGrant("alice-abort", safeKey)},
		{name: "legit: alice aborts it before uploading", req: withTicket(http.MethodDelete, "alice", "alice-abort", nil, "", ""), want: want{status: http.StatusNoContent}},
		{name: "legit: alice grants a PNG she will delete", req: grantPNG("alice", ""), want: created, then: keepGrant("alice-delete", safeKey)},
		{name: "legit: alice uploads the one she will delete", req: upload("alice-delete", func(s *suite) []byte { return s.png }), want: want{status: http.StatusOK}},
		{name: "legit: alice deletes it through the API", req: withTicket(http.MethodDelete, "alice", "alice-delete", nil, "", ""), want: want{status: http.StatusNoContent}},
		{name: "legit: alice grants a PNG for a later hostile upload", req: grantPNG("alice", ""), want: created, then: keepGrant("alice-open", safeKey)},
		{name: "legit: alice grants 12 MiB in parts (MinIO) or whole (file)", req: grantAs("alice", `{"filename":"x.bin","content_type":"application/octet-stream","size":12582912,"profile":"big"}`), want: created, then: func(t *testing.T, s *suite, r *response) {
			keepGrant("alice-big", nil)(t, s, r)
			if mp := s.grants["alice-big"].Multipart; (mp != nil) != (s.driver == "minio") || mp != nil && mp.PartCount != 3 {
				t.Errorf("multipart %+v on driver %s", mp, s.driver)
			}
		}},
		{name: "legit: alice asks for part URLs 1-3", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=1-3", ""),
			want: badFieldMsg("id", "not a multipart upload"), minio: &want{status: http.StatusOK}},
		{name: "legit: jwt user grants a PNG", req: func(s *suite) *http.Request { return s.jwtGrant(s.tokens["valid"], s.pngGrantBody("")) },
			want: created, then: keepGrant("jwt-1", regexp.MustCompile(`^images/`+jwtSubject+`/[0-9a-f]{32}\.png$`))},
		{name: "legit: dave reserves 60 MiB of his 100 MiB a day", req: grantAs("dave", `{"filename":"a.bin","content_type":"application/octet-stream","size":62914560,"profile":"bulk"}`), want: created},
		{name: "legit: alice grants a PNG but uploads text", req: grantPNG("alice", ""), want: created, then: keepGrant("alice-fake", safeKey)},
		{name: "legit: alice uploads text in its place", req: upload("alice-fake", func(s *suite) []byte {
			return bytes.Repeat([]byte("#"), len(s.png))
		}), want: want{status: http.StatusOK}},
		// Sniffing refuses it and deletes it: the store must not keep it.
		{name: "sniff: completion of text declared as PNG", req: withTicket(http.MethodPost, "alice", "alice-fake", nil, "/complete", "{}"),
			want: want{status: http.StatusUnprocessableEntity, code: "rejected", field: "content_type"}},

		// ---- API keys ----
		{name: "api key: none", req: grantPNG("", ""), want: unauthorized("missing API key")},
		{name: "api key: one character changed", req: func(s *suite) *http.Request {
			r := s.req(http.MethodPost, "", "/v1/uploads", s.pngGrantBody(""))
			r.Header.Set("Authorization", "Bearer "+flipMiddle(s.keys["alice"].Key))
			return r
		}, want: unauthorized("invalid API key")},
		{name: "api key: prefix of the key", req: func(s *suite) *http.Request {
			r := s.req(http.MethodPost, "", "/v1/uploads", s.pngGrantBody(""))
			k := s.keys["alice"].Key
			r.Header.Set("Authorization", "Bearer "+k[:len(k)-1])
			return r
		}, want: unauthorized("invalid API key")},
		{name: "api key: key with one byte more", req: grantWith(map[string][]string{"Authorization": {"Bearer {alice}A"}}), want: unauthorized("invalid API key")},
		// HTTP strips a header value's trailing whitespace (RFC 9110 5.5):
		// a trailing space is the same key, and must still be alice.
		{name: "api key: trailing space is not part of the value", req: grantWith(map[string][]string{"Authorization": {"Bearer {alice} "}}), want: created, then: keepGrant("trailing-space", safeKey)},
		{name: "api key: trailing no-break space", req: grantWith(map[string][]string{"Authorization": {"Bearer {alice}\u00a0"}}), want: unauthorized("invalid character")},
		{name: "api key: two spaces after Bearer", req: grantWith(map[string][]string{"Authorization": {"Bearer  {alice}"}}), want: unauthorized("invalid character")},
		{name: "api key: the config digest sent as the key", req: grantWith(map[string][]string{"Authorization": {"Bearer {alice.digest}"}}), want: unauthorized("invalid API key")},
		{name: "api key: Basic scheme", req: grantWith(map[string][]string{"Authorization": {"Basic {alice}"}}), want: unauthorized("scheme")},
		{name: "api key: in both headers", req: grantWith(map[string][]string{"Authorization": {"Bearer {alice}"}, "X-API-Key": {"{alice}"}}), want: unauthorized("not both")},
		{name: "api key: two Authorization headers", req: grantWith(map[string][]string{"Authorization": {"Bearer {bob}", "Bearer {alice}"}}), want: unauthorized("more than once")},
		{name: "api key: X-API-Key upper-cased", req: func(s *suite) *http.Request {
			r := s.req(http.MethodPost, "", "/v1/uploads", s.pngGrantBody(""))
			r.Header.Set("X-API-Key", strings.ToUpper(s.keys["alice"].Key))
			return r
		}, want: unauthorized("invalid API key")},
		{name: "api key: 9000-byte credential", req: grantWith(map[string][]string{"X-API-Key": {strings.Repeat("a", 9000)}}), want: unauthorized("too long")},
		{name: "api key: carol may not use profile images", req: grantPNG("carol", ""), want: want{status: http.StatusForbidden, code: "forbidden"}},

		// ---- JWT (a second broker in mode jwt, RS256 public key file) ----
		jwtRow("no token", "", unauthorized("missing bearer token")),
		jwtRow("alg none", "none", unauthorized("algorithm not accepted")),
		jwtRow("HS256 signed with the RS256 public key", "hs256-public-key", unauthorized("algorithm not accepted")),
		jwtRow("RS512 with the right key", "rs512", unauthorized("algorithm not accepted")),
		jwtRow("signed by another key", "other-key", unauthorized("signature")),
		jwtRow("expired", "expired", unauthorized("expired")),
		jwtRow("not yet valid", "not-yet", unauthorized("not valid yet")),
		jwtRow("wrong audience", "wrong-aud", unauthorized("audience")),
		jwtRow("wrong issuer", "wrong-iss", unauthorized("issuer")),
		jwtRow("no exp", "no-exp", unauthorized("exp")),
		jwtRow("no sub", "no-sub", unauthorized("sub")),
		jwtRow("payload swapped under a genuine signature", "swapped-payload", unauthorized("signature")),
		jwtRow("truncated", "truncated", unauthorized("")),
		jwtRow("profiles claim without images", "docs-only", want{status: http.StatusForbidden, code: "forbidden"}),
		// A sub is the issuer's to choose: it never becomes a path as it is.
		{name: "jwt: sub with ../ and an RTL override", want: created, req: func(s *suite) *http.Request {
			return s.jwtGrant(s.tokens["sub-traversal"], s.pngGrantBody(""))
		}, then: keepGrant("jwt-traversal", regexp.MustCompile(`^images/_[0-9a-f]{16}/[0-9a-f]{32}\.png$`))},

		// ---- JSON framing ----
		{name: "json: duplicate filename", req: grantAs("alice", `{"filename":"a.png","filename":"b.png","content_type":"image/png","size":10}`), want: badFieldMsg("filename", "duplicate")},
		{name: "json: duplicate metadata key", req: grantAs("alice", `{"filename":"a.png","content_type":"image/png","size":10,"metadata":{"a":"1","a":"2"}}`), want: badFieldMsg("metadata.a", "duplicate")},
		{name: "json: nested 9 deep", req: grantAs("alice", nested(7)), want: badFieldMsg("", "nested deeper")},
		{name: "json: nested 100000 deep", req: grantAs("alice", nested(20000)), want: badFieldMsg("", "nested deeper")},
		{name: "json: 10 MB body", raw: true, req: big(http.MethodPost, "alice", "/v1/uploads", "application/json", false), want: want{status: http.StatusRequestEntityTooLarge, code: "too_large"}},
		{name: "json: 10 MB chunked body", raw: true, req: big(http.MethodPost, "alice", "/v1/uploads", "application/json", true), want: want{status: http.StatusRequestEntityTooLarge, code: "too_large"}},
		{name: "json: sent as text/plain", req: func(s *suite) *http.Request {
			r := s.req(http.MethodPost, "alice", "/v1/uploads", s.pngGrantBody(""))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, want: want{status: http.StatusUnsupportedMediaType, code: "unsupported_type"}},
		{name: "json: empty body", req: postReq("alice", "/v1/uploads", ""), want: badField("")},
		{name: "json: an array", req: grantAs("alice", `[{"filename":"a.png"}]`), want: badField("")},
		{name: "json: two objects", req: grantAs("alice", `{"filename":"a.png","content_type":"image/png","size":10}{}`), want: badField("")},
		{name: "json: invalid UTF-8", req: grantAs("alice", "{\"filename\":\"a\xff.png\",\"content_type\":\"image/png\",\"size\":10}"), want: badField("filename")},
		{name: "json: unknown field", req: grantAs("alice", `{"filename":"a.png","content_type":"image/png","size":10,"sizee":1}`), want: badFieldMsg("sizee", "unknown field")},

		// ---- every field of POST /v1/uploads ----
		{name: "filename: a number", req: field("filename", `123`), want: badField("filename")},
		{name: "filename: null", req: field("filename", `null`), want: badFieldMsg("filename", "required")},
		{name: "filename: empty", req: field("filename", `""`), want: badFieldMsg("filename", "required")},
		{name: "filename: RTL override", req: field("filename", `"invoice\u202egnp.exe"`), want: created, then: keyIs(".exe")},
		{name: "filename: NUL", req: field("filename", `"cat.png\u0000.sh"`), want: created, then: keyIs(".sh")},
		{name: "filename: fullwidth dot", req: field("filename", `"cat\uff0epng"`), want: created, then: keyIs("")},
		{name: "filename: homoglyph slashes", req: field("filename", `"..\u2215..\u2215etc\u2215passwd"`), want: created, then: keyIs("")},
		{name: "filename: ../ traversal", req: field("filename", `"../../../etc/passwd"`), want: created, then: keyIs("")},
		{name: "filename: %2e%2e%2f traversal", req: field("filename", `"%2e%2e%2f%2e%2e%2fetc%2fpasswd.png"`), want: created, then: keyIs(".png")},
		{name: "filename: 5000 characters", req: field("filename", `"`+strings.Repeat("n", 4996)+`.PNG"`), want: created, then: keyIs(".png")},
		{name: "content_type: an array", req: field("content_type", `["image/png"]`), want: badField("content_type")},
		{name: "content_type: not allowed", req: field("content_type", `"text/html"`), want: want{status: http.StatusUnsupportedMediaType, code: "unsupported_type", field: "content_type"}},
		{name: "content_type: svg", req: field("content_type", `"image/svg+xml"`), want: want{status: http.StatusUnsupportedMediaType, code: "unsupported_type", field: "content_type"}},
		{name: "content_type: with a parameter", req: field("content_type", `"image/png; x=y"`), want: want{status: http.StatusUnsupportedMediaType, code: "unsupported_type", field: "content_type"}},
		{name: "content_type: wildcard", req: field("content_type", `"image/*"`), want: badField("content_type")},
		{name: "content_type: CR/LF", req: field("content_type", `"image/png\r\nX-Evil: 1"`), want: badField("content_type")},
		{name: "size: a string", req: field("size", `"100"`), want: badField("size")},
		{name: "size: \"NaN\"", req: field("size", `"NaN"`), want: badField("size")},
		{name: "size: bare NaN", req: field("size", `NaN`), want: badFieldMsg("size", "malformed JSON")},
		{name: "size: float", req: field("size", `1.5`), want: badField("size")},
		{name: "size: 1e400", req: field("size", `1e400`), want: badField("size")},
		{name: "size: negative", req: field("size", `-1`), want: badFieldMsg("size", "positive")},
		{name: "size: zero", req: field("size", `0`), want: badFieldMsg("size", "positive")},
		{name: "size: 2^63", req: field("size", `9223372036854775808`), want: badField("size")},
		{name: "size: 2^63-1", req: field("size", `9223372036854775807`), want: want{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "size"}},
		{name: "size: max_size + 1", req: field("size", fmt.Sprint(imagesMax+1)), want: want{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "size"}},
		{name: "size: true", req: field("size", `true`), want: badField("size")},
		{name: "profile: a number", req: field("profile", `7`), want: badField("profile")},
		{name: "profile: unknown", req: field("profile", `"nope"`), want: badFieldMsg("profile", "unknown profile")},
		{name: "profile: ../images", req: field("profile", `"../images"`), want: badFieldMsg("profile", "unknown profile")},
		{name: "checksum_sha256: not base64", req: field("checksum_sha256", `"!!!"`), want: badField("checksum_sha256")},
		{name: "checksum_sha256: 31 bytes", req: field("checksum_sha256", fmt.Sprintf("%q", base64.StdEncoding.EncodeToString(make([]byte, 31)))), want: badField("checksum_sha256")},
		{name: "checksum_sha256: hex instead of base64", req: field("checksum_sha256", fmt.Sprintf(`"%x"`, sha256.Sum256(nil))), want: badField("checksum_sha256")},
		{name: "metadata: a string", req: field("metadata", `"x"`), want: badField("metadata")},
		{name: "metadata: a number value", req: field("metadata", `{"a":1}`), want: badField("metadata.a")},
		{name: "metadata: CR/LF in a value", req: field("metadata", `{"note":"x\r\nX-Evil: 1"}`), want: badField("metadata.note")},
		{name: "metadata: LF in a value", req: field("metadata", `{"note":"x\nSet-Cookie: a=b"}`), want: badField("metadata.note")},
		{name: "metadata: non-ASCII value", req: field("metadata", `{"note":"caf\u00e9"}`), want: badField("metadata.note")},
		{name: "metadata: CR/LF in a key", req: field("metadata", `{"x\r\nx-evil":"1"}`), want: badField("metadata")},
		{name: "metadata: upper-case key", req: field("metadata", `{"Album":"x"}`), want: badField("metadata")},
		{name: "metadata: key with a colon", req: field("metadata", `{"x-evil:":"1"}`), want: badField("metadata")},
		{name: "metadata: reserved upbrokerprincipal", req: field("metadata", `{"upbrokerprincipal":"bob"}`), want: badFieldMsg("metadata.upbrokerprincipal", "reserved")},
		{name: "metadata: reserved upbroker- prefix", req: field("metadata", `{"upbroker-x":"1"}`), want: badFieldMsg("metadata.upbroker-x", "reserved")},
		{name: "metadata: 17 entries", req: field("metadata", metadataJSON(17, 1)), want: badFieldMsg("metadata", "at most 16")},
		{name: "metadata: over 2 KiB", req: field("metadata", metadataJSON(2, 1100)), want: badFieldMsg("metadata", "2048")},
		{name: "metadata: 65-byte key", req: field("metadata", `{"`+strings.Repeat("k", 65)+`":"v"}`), want: badField("metadata")},

		// ---- rate limits ----
		{name: "quota: dave's next 60 MiB exceed 100 MiB a day", req: grantAs("dave", `{"filename":"a.bin","content_type":"application/octet-stream","size":62914560,"profile":"bulk"}`),
			want: want{status: http.StatusTooManyRequests, code: "rate_limited", msg: "quota"}},

		// ---- tickets ----
		{name: "ticket: tampered", req: withTicket(http.MethodPost, "alice", "alice-1", flipMiddle, "/complete", "{}"), want: notFound},
		{name: "ticket: truncated", req: withTicket(http.MethodPost, "alice", "alice-1", func(id string) string { return id[:len(id)-5] }, "/complete", "{}"), want: notFound},
		{name: "ticket: extended", req: withTicket(http.MethodPost, "alice", "alice-1", func(id string) string { return id + "AAAA" }, "/complete", "{}"), want: notFound},
		{name: "ticket: path traversal in the id", req: func(s *suite) *http.Request {
			return s.req(http.MethodPost, "alice", "/v1/uploads/..%2F..%2Fetc%2Fpasswd/complete", "{}")
		}, want: notFound},
		{name: "ticket: 10000 characters", req: func(s *suite) *http.Request {
			return s.req(http.MethodPost, "alice", "/v1/uploads/"+strings.Repeat("A", 10000)+"/complete", "{}")
		}, want: notFound},
		{name: "ticket: bob's, completed by alice", req: withTicket(http.MethodPost, "alice", "bob-1", nil, "/complete", "{}"), want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "ticket: bob's, aborted by alice", req: withTicket(http.MethodDelete, "alice", "bob-1", nil, "", ""), want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "ticket: bob's, parts asked by alice", req: withTicket(http.MethodGet, "alice", "bob-1", nil, "/parts", ""), want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "ticket: alice's, completed without credentials", req: withTicket(http.MethodPost, "", "alice-1", nil, "/complete", "{}"), want: unauthorized("missing API key")},
		{name: "ticket: jwt user's, completed by alice", req: withTicket(http.MethodPost, "alice", "jwt-1", nil, "/complete", "{}"), want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "ticket: signed with another key", req: forged(http.MethodPost, "alice", []byte("another-key-of-thirty-two-bytes!"), func(s *suite) *ticket.Ticket {
			g := s.grant("alice-1")
			return &ticket.Ticket{Key: g.Key, Backend: backendName, Profile: "images", Principal: "alice", ContentType: "image/png", Size: int64(len(s.png)), Expires: time.Now().Add(time.Hour)}
		}, "/complete", "{}"), want: notFound},
		{name: "ticket: expired beyond the grace period", req: forged(http.MethodPost, "alice", nil, func(s *suite) *ticket.Ticket {
			g := s.grant("alice-open")
			return &ticket.Ticket{Key: g.Key, Backend: backendName, Profile: "images", Principal: "alice", ContentType: "image/png", Size: int64(len(s.png)), Expires: time.Now().Add(-3 * time.Hour)}
		}, "/complete", "{}"), want: want{status: http.StatusGone, code: "expired"}},
		{name: "ticket: names a backend that does not exist", req: forged(http.MethodPost, "alice", nil, func(s *suite) *ticket.Ticket {
			return &ticket.Ticket{Key: zeroKey(s), Backend: "elsewhere", Profile: "images", Principal: "alice", ContentType: "image/png", Size: 1, Expires: time.Now().Add(time.Hour)}
		}, "/complete", "{}"), want: notFound},
		{name: "complete: nothing uploaded after an abort", req: withTicket(http.MethodPost, "alice", "alice-abort", nil, "/complete", "{}"), want: want{status: http.StatusConflict, code: "not_uploaded"}},
		{name: "complete: parts is a string", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{"parts":"x"}`), want: badField("parts")},
		{name: "complete: part number is a string", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{"parts":[{"number":"1","etag":"x"}]}`), want: badField("parts.0.number")},
		{name: "complete: part number 2^64", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{"parts":[{"number":18446744073709551616,"etag":"x"}]}`), want: badField("parts.0.number")},
		{name: "complete: duplicate parts key", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{"parts":[],"parts":[]}`), want: badFieldMsg("parts", "duplicate")},
		{name: "complete: unknown field", req: withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{"key":"images/bob/x.png"}`), want: badFieldMsg("key", "unknown field")},
		{name: "complete: text/plain body", req: func(s *suite) *http.Request {
			r := withTicket(http.MethodPost, "alice", "alice-1", nil, "/complete", `{}`)(s)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, want: want{status: http.StatusUnsupportedMediaType, code: "unsupported_type"}},
		{name: "complete: 10 MB body", raw: true, req: func(s *suite) *http.Request {
			return big(http.MethodPost, "alice", "/v1/uploads/"+s.grant("alice-1").ID+"/complete", "application/json", false)(s)
		}, want: want{status: http.StatusRequestEntityTooLarge, code: "too_large"}},
		{name: "complete: multipart with wrong part count", req: withTicket(http.MethodPost, "alice", "alice-big", nil, "/complete", `{"parts":[{"number":1,"etag":"x"}]}`),
			want: want{status: http.StatusConflict, code: "not_uploaded"}, minio: ptr(badFieldMsg("parts", "expected 3 parts"))},

		// ---- parts (multipart on MinIO; the file driver has none) ----
		{name: "parts: numbers=0", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=0", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: numbers=-1", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=-1", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: numbers=NaN", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=NaN", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: numbers=1.5", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=1.5", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: numbers beyond the count", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=1-4", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: numbers=1-2^64", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=1-18446744073709551616", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "parts: reversed range", req: withTicket(http.MethodGet, "alice", "alice-big", nil, "/parts?numbers=3-1", ""), want: badField("id"), minio: ptr(badField("numbers"))},
		{name: "legit: alice aborts the 12 MiB upload", req: withTicket(http.MethodDelete, "alice", "alice-big", nil, "", ""), want: want{status: http.StatusNoContent}},

		// ---- downloads ----
		{name: "download: no credentials", req: func(s *suite) *http.Request {
			return s.req(http.MethodGet, "", "/v1/downloads/"+pathEscapeKey(s.grant("alice-1").Key), "")
		}, want: unauthorized("")},
		{name: "download: bob takes alice's object", req: func(s *suite) *http.Request {
			return s.req(http.MethodGet, "bob", "/v1/downloads/"+pathEscapeKey(s.grant("alice-1").Key), "")
		}, want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "download: jwt user takes alice's object", req: func(s *suite) *http.Request {
			r := newRequest(s.t, http.MethodGet, s.jwt.URL, "/v1/downloads/"+pathEscapeKey(s.grant("alice-1").Key), nil)
			r.Header.Set("Authorization", "Bearer "+s.tokens["valid"])
			return r
		}, want: want{status: http.StatusForbidden, code: "forbidden"}},
		{name: "download: ../ traversal", req: getReq("alice", "/v1/downloads/../../../etc/passwd"), want: badField("key")},
		{name: "download: %2e%2e%2f traversal", req: getReq("alice", "/v1/downloads/%2e%2e%2f%2e%2e%2fetc%2fpasswd"), want: badField("key")},
		{name: "download: NUL in the key", req: getReq("alice", "/v1/downloads/images/alice/a%00.png"), want: badField("key")},
		{name: "download: 5000-character key", req: getReq("alice", "/v1/downloads/"+strings.Repeat("k", 5000)), want: badField("key")},
		{name: "download: missing object", req: func(s *suite) *http.Request { return s.req(http.MethodGet, "alice", "/v1/downloads/"+zeroKey(s), "") }, want: notFound},
		{name: "download: unknown backend", req: func(s *suite) *http.Request {
			return s.req(http.MethodGet, "alice", "/v1/downloads/"+pathEscapeKey(s.grant("alice-1").Key)+"?backend=nope", "")
		}, want: notFound},

		// ---- the file driver's blob route (absent under MinIO) ----
		{name: "blob: overwrite a completed object", req: blob(http.MethodPut, "alice-1", nil, thePNG, nil), want: want{status: http.StatusPreconditionFailed, code: "exists"}, minio: &notFound},
		{name: "blob: tampered signature", req: blob(http.MethodPut, "alice-open", func(p, q string) (string, string) { return p, flipQueryValue(q) }, nil, nil), want: want{status: http.StatusForbidden, code: "forbidden"}, minio: &notFound},
		{name: "blob: signature for another key", req: blob(http.MethodPut, "alice-open", func(p, q string) (string, string) {
			return "/v1/blob/" + backendName + "/images/bob/" + strings.Repeat("1", 32) + ".png", q
		}, nil, nil), want: want{status: http.StatusForbidden, code: "forbidden"}, minio: &notFound},
		{name: "blob: no signature", req: blob(http.MethodGet, "alice-1", func(p, q string) (string, string) { return p, "" }, nil, nil), want: want{status: http.StatusForbidden, code: "forbidden"}, minio: &notFound},
		{name: "blob: ../ traversal", req: blob(http.MethodGet, "alice-1", func(p, q string) (string, string) {
			return "/v1/blob/" + backendName + "/../../../etc/passwd", q
		}, nil, nil), want: notFound},
		{name: "blob: %2e%2e%2f traversal", req: blob(http.MethodGet, "alice-1", func(p, q string) (string, string) {
			return "/v1/blob/" + backendName + "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", q
		}, nil, nil), want: notFound},
		{name: "blob: unsigned metadata header", req: blob(http.MethodPut, "alice-open", nil, thePNG, map[string]string{"X-Upbroker-Meta-Evil": "1"}), want: want{status: http.StatusForbidden, code: "forbidden", field: "evil"}, minio: &notFound},
		{name: "blob: wrong Content-Type", req: blob(http.MethodPut, "alice-open", nil, thePNG, map[string]string{"Content-Type": "text/html"}), want: want{status: http.StatusForbidden, code: "forbidden", field: "content_type"}, minio: &notFound},
		{name: "blob: 10 MB body for a small grant", raw: true, req: big(http.MethodPut, "", "blob:alice-open", "", false), want: want{status: http.StatusRequestEntityTooLarge, code: "too_large", field: "size"}, minio: &notFound},
		{name: "blob: DELETE through a PUT signature", req: blob(http.MethodDelete, "alice-open", nil, nil, nil), want: want{status: http.StatusForbidden, code: "forbidden"}, minio: &notFound},

		// ---- Uppy Companion routes ----
		{name: "companion: params without credentials", req: companion(http.MethodGet, "", "/params?filename=a.png&type=image/png", ""), want: compErr(http.StatusUnauthorized, "missing API key")},
		{name: "companion: params with an empty filename", req: companion(http.MethodGet, "alice", "/params?filename=&type=image/png", ""), want: compErr(http.StatusBadRequest, "filename: required")},
		{name: "companion: params with a 5000-character filename", req: companion(http.MethodGet, "alice", "/params?type=image/png&filename="+strings.Repeat("n", 5000), ""), want: compErr(http.StatusBadRequest, "filename: longer than")},
		{name: "companion: params with a type not allowed", req: companion(http.MethodGet, "alice", "/params?filename=a.html&type=text/html", ""), want: compErr(http.StatusUnsupportedMediaType, "type:")},
		{name: "companion: params with reserved metadata", req: companion(http.MethodGet, "alice", "/params?filename=a.png&type=image/png&metadata%5Bupbrokerprincipal%5D=bob", ""), want: compErr(http.StatusBadRequest, "metadata.upbrokerprincipal")},
		{name: "companion: params with 17 metadata entries", req: companion(http.MethodGet, "alice", "/params?filename=a.png&type=image/png"+companionMeta(17), ""), want: compErr(http.StatusBadRequest, "at most 16")},
		// Companion RFC 2047-encodes what cannot travel in a header, as
		// Companion itself does: CR/LF never reach a header.
		{name: "companion: params with CR/LF in metadata", req: companion(http.MethodGet, "alice", "/params?filename=a.png&type=image/png&metadata%5Bnote%5D=x%0D%0AX-Evil%3A%201", ""), want: want{status: http.StatusOK}, then: noCRLF},
		{name: "companion: multipart with a number for filename", req: companion(http.MethodPost, "alice", "/multipart", `{"filename":5,"type":"image/png"}`), want: compErr(http.StatusBadRequest, "filename")},
		{name: "companion: multipart with a 10 MB body", raw: true, req: big(http.MethodPost, "alice", "/s3/multipart", "application/json", false), want: compErr(http.StatusRequestEntityTooLarge, "larger than 65536 bytes")},
		{name: "companion: sign a part of bob's key", req: companion(http.MethodGet, "alice", "/multipart/abc/1?key={bob}", ""), want: compErr(http.StatusForbidden, "not made for you")},
		{name: "companion: abort bob's upload", req: companion(http.MethodDelete, "alice", "/multipart/abc?key={bob}", ""), want: compErr(http.StatusForbidden, "not made for you")},
		{name: "companion: complete bob's upload", req: companion(http.MethodPost, "alice", "/multipart/abc/complete?key={bob}", `{"parts":[{"PartNumber":1,"ETag":"x"}]}`), want: compErr(http.StatusForbidden, "not made for you")},
		{name: "companion: ../ key", req: companion(http.MethodGet, "alice", "/multipart/abc/1?key=..%2F..%2Fetc%2Fpasswd", ""), want: compErr(http.StatusBadRequest, "key: not a valid object key")},
		{name: "companion: CR/LF in the upload id", req: companion(http.MethodGet, "alice", "/multipart/abc%0D%0AX-Evil/1?key={own}", ""), want: compErr(http.StatusBadRequest, "uploadId")},
		{name: "companion: part number NaN", req: companion(http.MethodGet, "alice", "/multipart/abc/NaN?key={own}", ""), want: compErr(http.StatusBadRequest, "backend"), minio: ptr(compErr(http.StatusBadRequest, "partNumber"))},
		{name: "companion: part number 2^64", req: companion(http.MethodGet, "alice", "/multipart/abc/18446744073709551616?key={own}", ""), want: compErr(http.StatusBadRequest, "backend"), minio: ptr(compErr(http.StatusBadRequest, "partNumber"))},
		{name: "companion: part number -1", req: companion(http.MethodGet, "alice", "/multipart/abc/-1?key={own}", ""), want: compErr(http.StatusBadRequest, "backend"), minio: ptr(compErr(http.StatusBadRequest, "partNumber"))},
	}
}

func ptr[T any](v T) *T { return &v }

func thePNG(s *suite) []byte { return s.png }

// companionMeta is n metadata[kN]=v query parameters.
func companionMeta(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "&metadata%%5Bk%d%%5D=v", i)
	}
	return b.String()
}

// flipQueryValue changes one character of every query value that looks
// like a signature (the longest one).
func flipQueryValue(q string) string {
	v, err := url.ParseQuery(q)
	if err != nil {
		return q + "x"
	}
	longest := ""
	for k, vs := range v {
		if len(vs) == 1 && len(vs[0]) > len(v.Get(longest)) {
			longest = k
		}
	}
	v.Set(longest, flipMiddle(v.Get(longest)))
	return v.Encode()
}
