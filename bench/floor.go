package main

import (
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// floorCommand is the hidden first argument that makes this program the
// floor server: a bare net/http handler that answers every request with the
// same JSON body from memory, in a process of its own (as the server is),
// with the server's timeouts. It is what the hot path is compared with.
const floorCommand = "__floor"

func floorMain(args []string) {
	if len(args) != 2 && len(args) != 4 {
		log.Fatalf("usage: bench %s BODYFILE ADDR [CERTFILE KEYFILE]", floorCommand)
	}
	body, err := os.ReadFile(args[0])
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", args[1])
	if err != nil {
		log.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	if len(args) == 4 {
		// floor_tls: the same handler over TLS with the server's certificate.
		log.Fatal(hs.ServeTLS(ln, args[2], args[3]))
	}
	log.Fatal(hs.Serve(ln))
}
