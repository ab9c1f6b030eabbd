// Command upbench is upbroker's load harness (`make bench`). In one run on
// one machine it measures:
//
//  1. POST /v1/uploads throughput and latency (file, minio and s3 drivers,
//     auth api_key) with wrk, next to a bare net/http handler that returns a
//     fixed 400-byte JSON: the ceiling of this machine;
//  2. direct upload through upbroker against a 2-hop Gin proxy that
//     streams the file to MinIO itself: server CPU seconds and peak RSS;
//  3. one large upload through the file driver against cp;
//  4. the Go micro-benchmarks.
//
// It prints a table and writes bench/results.json. Every server it starts
// listens on 127.0.0.1 and is stopped before it exits.
//
// The same binary also runs the two comparison servers, as `upbench bare`
// and `upbench proxy`, so that each is a process of its own whose CPU time
// can be read from /proc.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "bare":
			bareMain(os.Args[2:])
			return
		case "proxy":
			proxyMain(os.Args[2:])
			return
		case "run":
			os.Args = append(os.Args[:1], os.Args[2:]...)
		case "-h", "--help", "help":
			usage()
			return
		}
	}
	runMain()
}

func usage() {
	fmt.Fprint(os.Stderr, `upbench: upbroker's load harness.

Usage:
  upbench [run] [flags]     run every measurement (what make bench does)
  upbench bare -addr A      serve the bare net/http ceiling handler
  upbench proxy -addr A ... serve the 2-hop Gin proxy to MinIO

Run flags:
`)
	flag.PrintDefaults()
}
