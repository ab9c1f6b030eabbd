package file

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// limitedWriter accepts max bytes, then fails; it records every byte.
type limitedWriter struct {
	buf   bytes.Buffer
	max   int
	err   error
	short bool // return a short count without an error
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:room])
		if w.short {
			return room, nil
		}
		return room, w.err
	}
	return w.buf.Write(p)
}

// countingReader counts what was read from it, to show the copy stops
// reading once the destination has failed.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestPipeCopy(t *testing.T) {
	data := make([]byte, 3*pipeDepth*chunkSize+123)
	for i := range data {
		data[i] = byte(i*31 + i>>9)
	}
	errRead := errors.New("read broke")
	errWrite := errors.New("disk full")
	huge := int(^uint(0) >> 1)
	for _, tc := range []struct {
		name    string
		src     func() io.Reader
		dst     *limitedWriter
		want    int    // bytes written and reported
		wantErr error  // nil: a clean EOF
		short   bool   // the writer's failure is a short count
		maxRead int64  // if > 0, the source must not be read past this
		check   []byte // the bytes dst must hold
	}{
		{name: "empty", src: func() io.Reader { return bytes.NewReader(nil) }, dst: &limitedWriter{max: huge}},
		{name: "one byte", src: func() io.Reader { return bytes.NewReader(data[:1]) }, dst: &limitedWriter{max: huge}, want: 1, check: data[:1]},
		{name: "exactly one chunk", src: func() io.Reader { return bytes.NewReader(data[:chunkSize]) }, dst: &limitedWriter{max: huge},
			want: chunkSize, check: data[:chunkSize]},
		{name: "many chunks", src: func() io.Reader { return bytes.NewReader(data) }, dst: &limitedWriter{max: huge},
			want: len(data), check: data},
		{name: "one byte per read", src: func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:3000])) },
			dst: &limitedWriter{max: huge}, want: 3000, check: data[:3000]},
		{name: "data with EOF", src: func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
			dst: &limitedWriter{max: huge}, want: len(data), check: data},
		{name: "read error keeps what came before", src: func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:chunkSize+10]), iotest.ErrReader(errRead))
		}, dst: &limitedWriter{max: huge}, want: chunkSize + 10, wantErr: errRead, check: data[:chunkSize+10]},
		{name: "write error stops the reading", src: func() io.Reader { return bytes.NewReader(data) },
			dst: &limitedWriter{max: 100, err: errWrite}, want: 100, wantErr: errWrite,
			maxRead: int64((pipeDepth + 2) * chunkSize), check: data[:100]},
		{name: "short write", src: func() io.Reader { return bytes.NewReader(data) },
			dst: &limitedWriter{max: 100, short: true}, want: 100, wantErr: io.ErrShortWrite, check: data[:100]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: tc.src()}
			n, err := pipeCopy(tc.dst, src)
			if n != int64(tc.want) {
				t.Errorf("copied %d bytes, want %d", n, tc.want)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(tc.dst.buf.Bytes(), tc.check) {
				t.Errorf("the destination holds %d bytes that differ from the %d expected", tc.dst.buf.Len(), len(tc.check))
			}
			if tc.maxRead > 0 && src.n > tc.maxRead {
				t.Errorf("read %d bytes after the destination failed at 100", src.n)
			}
		})
	}
}

// TestPipeCopyKeepsErrorType checks that the caller can still tell the
// body's errors apart (the handler looks for *http.MaxBytesError).
func TestPipeCopyKeepsErrorType(t *testing.T) {
	type tooBig struct{ error }
	src := io.MultiReader(bytes.NewReader(make([]byte, 10)), iotest.ErrReader(tooBig{errors.New("too big")}))
	_, err := pipeCopy(io.Discard, src)
	var tb tooBig
	if !errors.As(err, &tb) {
		t.Fatalf("error %T %v lost its type", err, err)
	}
}
