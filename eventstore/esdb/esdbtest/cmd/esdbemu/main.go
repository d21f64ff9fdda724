// Command esdbemu serves the EventStoreDB gRPC protocol emulator of package
// esdbtest on a TCP address, so that a separate process (prescripto with
// ESDB_URL, a load test) can use it.
//
// This is a PROTOCOL EMULATOR FOR TESTS AND MEASUREMENTS, NOT A DATABASE: it
// keeps the whole log in this process's memory (nothing is written to disk,
// everything is lost when it stops), implements only the subset of the
// protocol the Go client uses (see package esdbtest for what is and is not
// implemented), has no TLS, no authentication and no clustering. Figures
// measured against it describe the emulator, not EventStoreDB or KurrentDB.
//
//	esdbemu -addr 127.0.0.1:2113
//
// prints the connection string (esdb://127.0.0.1:PORT?tls=false) on one
// line of standard output once it listens, then serves until SIGINT or
// SIGTERM. Port 0 picks a free port; the printed string names it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2113", "TCP address to listen on (port 0: a free port)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "esdbemu:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := esdbtest.New()
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	fmt.Println(esdbtest.ConnectionString(l.Addr().String()))
	select {
	case err := <-done: // the listener failed
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	case <-ctx.Done():
		s.Stop()
		<-done
		fmt.Fprintln(os.Stderr, "esdbemu: stopped")
		return nil
	}
}
