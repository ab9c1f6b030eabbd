package gocloudblob

import (
	"context"
	"errors"
	"net"
	"testing"

	"gocloud.dev/blob/memblob"

	"github.com/upbroker/upbroker/drivers"
)

func TestMapError(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	ctx := context.Background()
	_, notFound := b.Attributes(ctx, "missing")
	canceled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error
		not  error
	}{
		{"gocloud not found", ctx, notFound, drivers.ErrNotFound, nil},
		{"network", ctx, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, drivers.ErrUnavailable, nil},
		{"deadline", ctx, context.DeadlineExceeded, drivers.ErrUnavailable, nil},
		{"caller went away", canceled, context.Canceled, context.Canceled, drivers.ErrUnavailable},
		{"unknown", ctx, errors.New("boom"), drivers.ErrUnavailable, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MapError(tc.ctx, "stat", "bkt", "k", tc.err)
			if !errors.Is(got, tc.want) {
				t.Fatalf("MapError = %v, want %v", got, tc.want)
			}
			if tc.not != nil && errors.Is(got, tc.not) {
				t.Fatalf("MapError = %v, must not be %v", got, tc.not)
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("MapError lost the original error: %v", got)
			}
		})
	}
	if MapError(ctx, "x", "b", "k", nil) != nil {
		t.Fatal("MapError(nil) != nil")
	}
}

// TestStore runs the shared methods against gocloud's in-memory bucket.
func TestStore(t *testing.T) {
	b := memblob.OpenBucket(nil)
	s := Store{Bucket: b, Name: "mem"}
	defer s.Close()
	ctx := context.Background()
	body := []byte("0123456789")
	if err := b.WriteAll(ctx, "dir/a.txt", body, nil); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name   string
		off, n int64
		want   string
		err    error
	}{
		{"head", 0, 4, "0123", nil},
		{"middle", 3, 4, "3456", nil},
		{"past end", 8, 10, "89", nil},
		{"beyond end", 20, 5, "", nil},
		{"zero length", 0, 0, "", nil},
		{"negative", -1, 5, "", drivers.ErrInvalid},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadRange(ctx, "dir/a.txt", tc.off, tc.n)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ReadRange = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	info, err := s.Stat(ctx, "dir/a.txt")
	if err != nil || info.Size != 10 || info.Key != "dir/a.txt" {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	list, err := s.List(ctx, "dir/")
	if err != nil || len(list) != 1 || list[0].Key != "dir/a.txt" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if err := s.Delete(ctx, "dir/a.txt"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "dir/a.txt"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.Stat(ctx, "dir/a.txt"); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("Stat after delete: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
