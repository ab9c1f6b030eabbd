package file_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/drivertest"
	"github.com/upbroker/upbroker/drivers/file"
)

const backend = "local"

// serve opens a file driver on a fresh folder behind a real HTTP server on
// 127.0.0.1, mounted the way the broker mounts it.
func serve(t *testing.T) (*file.Driver, string, string) {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	mux := http.NewServeMux()
	mux.Handle("/v1/blob/"+backend+"/", http.StripPrefix("/v1/blob/"+backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.Load()).ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	d, err := drivers.Open(context.Background(), "file", drivers.Settings{"path": dir}, drivers.Env{
		Backend: backend, BaseURL: srv.URL, SigningKey: bytes.Repeat([]byte("k"), 32),
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	fd := d.(*file.Driver)
	handler := fd.Handler()
	h.Store(&handler)
	return fd, dir, srv.URL
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Open: func(t *testing.T) drivers.Driver {
			d, _, _ := serve(t)
			return d
		},
	})
}
