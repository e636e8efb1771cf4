// The compiled floor for `npm run bench`: Go's net/http/httputil.ReverseProxy in front of one
// upstream, and nothing else (no auth, no logging, no rewriting beyond what ReverseProxy does).
// What forwarding an HTTP/1.1 call costs in CPU when the proxy is compiled and does only that.
//
// Usage: go-floor -listen 127.0.0.1:PORT -upstream http://127.0.0.1:PORT
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on (loopback)")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("go-floor: -upstream must be a URL: %q", *upstream)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     4 * time.Second,
			DisableCompression:  true,
		},
	}
	server := &http.Server{Addr: *listen, Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = server.Close()
		os.Exit(0)
	}()
	log.Printf("go-floor listening on %s, upstream %s", *listen, target)
	log.Fatal(server.ListenAndServe())
}
