package file

import (
	"io"
	"sync"
)

// fileblob's writer hashes every byte with MD5 for its sidecar, and that
// hash (about 550 MB/s on one core) is the cost of a large upload. A plain
// io.Copy reads the socket, writes the file and hashes on one goroutine, so
// the network read and the request's SHA-256 wait for the MD5. pipeCopy
// reads on the caller's goroutine and writes on another, so those run on a
// second core while the MD5 runs.
//
// Each copy holds pipeDepth chunks of chunkSize from a shared pool: the
// memory of an upload is bounded, whatever its size.
const (
	chunkSize = 256 << 10
	pipeDepth = 4
)

var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, chunkSize)
	return &b
}}

func getChunk() *[]byte { return chunkPool.Get().(*[]byte) }

type chunk struct {
	buf *[]byte
	n   int
}

// pipeCopy copies src to dst until src's EOF, like io.Copy, and returns the
// bytes written and the first error of either side. src is only read on
// the calling goroutine (a request body must not be read elsewhere), and
// dst is no longer written when pipeCopy returns, so the caller may close
// or abort it at once.
func pipeCopy(dst io.Writer, src io.Reader) (int64, error) {
	full := make(chan chunk, pipeDepth)
	free := make(chan *[]byte, pipeDepth)
	for range pipeDepth {
		free <- getChunk()
	}
	// stop is closed when dst fails, so the reader stops reading a body
	// that can no longer be stored.
	stop := make(chan struct{})
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for c := range full {
			if r.err == nil {
				k, err := dst.Write((*c.buf)[:c.n])
				r.n += int64(k)
				if err == nil && k < c.n {
					err = io.ErrShortWrite
				}
				if err != nil {
					r.err = err
					close(stop)
				}
			}
			free <- c.buf
		}
		done <- r
	}()

	var rerr error
read:
	for {
		select {
		case <-stop:
			break read
		default:
		}
		var b *[]byte
		select {
		case b = <-free:
		case <-stop:
			break read
		}
		// Fill the chunk, so the writer makes few large writes however
		// the socket delivers the body.
		n := 0
		for n < len(*b) && rerr == nil {
			var k int
			k, rerr = src.Read((*b)[n:])
			n += k
		}
		if n > 0 {
			full <- chunk{b, n}
		} else {
			free <- b
		}
		if rerr != nil {
			break
		}
	}
	close(full)
	r := <-done
	// Every chunk is back in free once the writer has finished.
	close(free)
	for b := range free {
		chunkPool.Put(b)
	}
	if r.err != nil {
		return r.n, r.err
	}
	if rerr != io.EOF {
		return r.n, rerr
	}
	return r.n, nil
}
