package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// bareBody is a fixed 400-byte JSON document, about the size of a grant.
var bareBody = func() []byte {
	head := `{"id":"bare","url":"http://127.0.0.1/bucket/key","pad":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", 400-len(head)-len(tail)) + tail)
}()

// bareMain serves the ceiling: the cheapest HTTP handler Go can run that
// still reads the request body and answers JSON.
func bareMain(args []string) {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	_ = fs.Parse(args)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = http.MaxBytesReader(w, r.Body, 64<<10).Read(make([]byte, 512))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(bareBody)
	})
	serve(*addr, h)
}

// proxyMain is the "2-hop" upload the tutorials teach: the app server
// receives the multipart form itself and streams the file on to MinIO with
// minio-go's PutObject.
func proxyMain(args []string) {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	endpoint := fs.String("endpoint", "127.0.0.1:9000", "MinIO host:port")
	bucket := fs.String("bucket", "bench", "bucket")
	_ = fs.Parse(args)
	mc, err := minio.New(*endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("UPBENCH_ACCESS_KEY"), os.Getenv("UPBENCH_SECRET_KEY"), ""),
	})
	if err != nil {
		log.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/upload", func(c *gin.Context) {
		fh, err := c.FormFile("file")
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		f, err := fh.Open()
		if err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		defer f.Close()
		info, err := mc.PutObject(c.Request.Context(), *bucket, "proxy/"+c.PostForm("name"), f, fh.Size,
			minio.PutObjectOptions{ContentType: fh.Header.Get("Content-Type")})
		if err != nil {
			c.JSON(http.StatusBadGateway, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusCreated, gin.H{"key": info.Key, "size": info.Size, "etag": info.ETag})
	})
	serve(*addr, r)
}

func serve(addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
