package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/upbroker/upbroker/internal/testenv"
)

// cloudYAML is the broker's config for one emulated cloud. ENDPOINT and
// BACKEND are filled in by startCloud before newStack runs the template,
// because the emulator has to be running (on its free port) first.
const cloudYAML = `
server:
  addr: 127.0.0.1:8080
  public_url: {{.PublicURL}}
  demo_page: true
secrets:
  ticket_keys: ["{{.TicketKey}}"]
auth:
  mode: none
backends:
  BACKEND:
BACKEND_SETTINGS
profiles:
  images:
    backend: BACKEND
    content_types: [image/png, image/jpeg]
    max_size: 10MiB
    key: "images/{principal}/{uuid}{ext}"
    expires: 5m
    sniff: true
default_profile: images
`

// storedObject is an object as the emulator itself reports it, read with
// its own API rather than through the driver under test.
type storedObject struct {
	Data        []byte
	ContentType string
	Metadata    map[string]string
}

// cloud is one emulator, with a counting gate in front of it through which
// the browser uploads.
type cloud struct {
	name    string
	backend string
	yaml    string
	// Gate sees every request the browser sends to the store. It only
	// counts and forwards: CORS comes from the emulator itself.
	Gate *gate
	// allowOrigin lets the broker's origin upload, once it is known.
	allowOrigin func(t *testing.T, origin string)
	read        func(t *testing.T, key string) storedObject
	list        func(t *testing.T) []string
}

// cloudStarters are the two clouds the demo page is tested against.
var cloudStarters = []struct {
	name  string
	start func(t *testing.T) *cloud
}{
	{"gcs", startGCSCloud},
	{"azure", startAzureCloud},
}

// gateTo is a counting gate in front of an emulator's origin. The outgoing Host is
// the emulator's own: fake-gcs-server routes on it, and neither a V4
// signature the emulator does not check nor a SAS (whose string-to-sign
// holds no host) depends on it.
func gateTo(t *testing.T, target string) (*gate, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	// Only the origin: SetURL would put a path of the target (Azurite's
	// account) in front of the request's own, which already has it.
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	g := newGate(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(origin) }})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	t.Cleanup(g.Release)
	return g, srv.URL
}

func cloudConfig(backend, settings string) string {
	return strings.NewReplacer("BACKEND_SETTINGS", settings, "BACKEND", backend).Replace(cloudYAML)
}

// startGCSCloud starts fake-gcs-server with a bucket "uploads". The driver
// has no credentials_file: against an emulator it signs with a throwaway
// key, as testdata/gcs.yaml does.
func startGCSCloud(t *testing.T) *cloud {
	t.Helper()
	fake := testenv.StartFakeGCS(t)
	fake.CreateBucket(t, "uploads")
	g, endpoint := gateTo(t, fake.URL)
	t.Setenv("STORAGE_EMULATOR_HOST", "") // the endpoint setting decides
	objectURL := func(key string) string {
		return fake.URL + "/storage/v1/b/uploads/o/" + url.PathEscape(key)
	}
	return &cloud{
		name: "gcs", backend: "gcs", Gate: g,
		yaml: cloudConfig("gcs", "    driver: gcs\n    bucket: uploads\n    endpoint: "+endpoint),
		// fake-gcs-server answers every preflight for the headers that
		// testenv listed at its start, from any origin.
		allowOrigin: func(*testing.T, string) {},
		read: func(t *testing.T, key string) storedObject {
			t.Helper()
			var attrs struct {
				ContentType string            `json:"contentType"`
				Metadata    map[string]string `json:"metadata"`
			}
			if err := json.Unmarshal(httpGet(t, objectURL(key)), &attrs); err != nil {
				t.Fatalf("object %s: %v", key, err)
			}
			return storedObject{Data: httpGet(t, objectURL(key)+"?alt=media"), ContentType: attrs.ContentType, Metadata: attrs.Metadata}
		},
		list: func(t *testing.T) []string {
			t.Helper()
			var l struct {
				Items []struct {
					Name string `json:"name"`
				} `json:"items"`
			}
			if err := json.Unmarshal(httpGet(t, fake.URL+"/storage/v1/b/uploads/o"), &l); err != nil {
				t.Fatalf("list bucket: %v", err)
			}
			var keys []string
			for _, it := range l.Items {
				keys = append(keys, it.Name)
			}
			sort.Strings(keys)
			return keys
		},
	}
}

// startAzureCloud starts Azurite with a container "uploads"; the account's
// CORS rule is set for the broker's origin by allowOrigin.
func startAzureCloud(t *testing.T) *cloud {
	t.Helper()
	az := testenv.StartAzurite(t)
	az.CreateContainer(t, "uploads")
	g, endpoint := gateTo(t, az.ServiceURL)
	client := az.Client(t)
	return &cloud{
		name: "azure", backend: "azure", Gate: g,
		yaml: cloudConfig("azure", fmt.Sprintf(
			"    driver: azure\n    container: uploads\n    account_name: %s\n    account_key: %s\n    endpoint: %s/%s",
			az.Account, az.Key, endpoint, az.Account)),
		allowOrigin: func(t *testing.T, origin string) { az.AllowCORS(t, origin) },
		read: func(t *testing.T, key string) storedObject {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			resp, err := client.DownloadStream(ctx, "uploads", key, nil)
			if err != nil {
				t.Fatalf("download %s: %v", key, err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("download %s: %v", key, err)
			}
			o := storedObject{Data: data, Metadata: map[string]string{}}
			if resp.ContentType != nil {
				o.ContentType = *resp.ContentType
			}
			for k, v := range resp.Metadata {
				if v != nil {
					o.Metadata[strings.ToLower(k)] = *v
				}
			}
			return o
		},
		list: func(t *testing.T) []string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			var keys []string
			pager := client.NewListBlobsFlatPager("uploads", &azblob.ListBlobsFlatOptions{})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					t.Fatalf("list container: %v", err)
				}
				for _, b := range page.Segment.BlobItems {
					keys = append(keys, *b.Name)
				}
			}
			sort.Strings(keys)
			return keys
		},
	}
}

// newCloudStack starts the cloud, then the broker and browser on it, and
// opens the store's CORS to the broker's origin.
func newCloudStack(t *testing.T, start func(*testing.T) *cloud) (*stack, *cloud) {
	t.Helper()
	c := start(t)
	s := newStack(t, c.yaml, stackOptions{})
	c.allowOrigin(t, s.URL)
	return s, c
}

// httpGet reads a URL of the emulator's own API, failing on any non-2xx.
func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b
}
