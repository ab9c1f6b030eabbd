package main

import "testing"

func TestBenchLine(t *testing.T) {
	tests := []struct {
		line, name, ns, bytes, allocs string
	}{
		{"BenchmarkCreateUpload-2   	   57234	     20546 ns/op	   10145 B/op	      38 allocs/op",
			"BenchmarkCreateUpload", "20546", "10145", "38"},
		// b.SetBytes adds an MB/s column before B/op.
		{"BenchmarkStreamPut/length-2 	       3	 776421310 ns/op	 345.72 MB/s	  440000 B/op	      12 allocs/op",
			"BenchmarkStreamPut/length", "776421310", "440000", "12"},
		{"BenchmarkKey 	 2000000	       634 ns/op", "BenchmarkKey", "634", "", ""},
	}
	for _, tc := range tests {
		m := benchLine.FindStringSubmatch(tc.line)
		if m == nil {
			t.Fatalf("%q: no match", tc.line)
		}
		if m[1] != tc.name || m[2] != tc.ns || m[3] != tc.bytes || m[4] != tc.allocs {
			t.Errorf("%q: got name %q ns %q B %q allocs %q", tc.line, m[1], m[2], m[3], m[4])
		}
	}
	if benchLine.MatchString("PASS") || benchLine.MatchString("ok  \tgithub.com/x\t1.2s") {
		t.Error("matched a line that is not a result")
	}
}
