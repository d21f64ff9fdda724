// Command esdbemu serves the EventStoreDB gRPC protocol emulator of package
// esdbtest on a TCP address, so that a separate process (prescripto with
// ESDB_URL, a load test) can use it.
//
// This is a PROTOCOL EMULATOR FOR TESTS AND MEASUREMENTS, NOT A DATABASE: it
// keeps the whole log in this process's memory (nothing is written to disk,
// everything is lost when it stops), implements only the subset of the
// protocol the Go client uses (see package esdbtest for what is and is not
// implemented) and no clustering (gossip names this one node). Figures
// measured against it describe the emulator, not EventStoreDB or KurrentDB.
//
//	esdbemu -addr 127.0.0.1:2113
//	esdbemu -addr 127.0.0.1:2113 -tls-dir /tmp/esdbemu -user admin:changeit:admin -user prescripto:secret
//
// prints the connection string (esdb://127.0.0.1:PORT?tls=false) on one
// line of standard output once it listens, then serves until SIGINT or
// SIGTERM. Port 0 picks a free port; the printed string names it. With
// -tls-dir it makes a throwaway CA and a certificate for 127.0.0.1 and
// localhost, writes the CA to DIR/ca.crt and serves TLS (the printed string
// has tls=true and tlsCAFile); each -user login:password[:admin] turns
// authentication on with the server's default ACLs (only admins read $all).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"

	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2113", "TCP address to listen on (port 0: a free port)")
	tlsDir := flag.String("tls-dir", "", "serve TLS with a throwaway CA written to DIR/ca.crt")
	var users []esdbtest.User
	flag.Func("user", "login:password[:admin]: a user (repeatable); any turns authentication on", func(v string) error {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || (len(parts) == 3 && parts[2] != "admin") {
			return errors.New("want login:password or login:password:admin")
		}
		users = append(users, esdbtest.User{Login: parts[0], Password: parts[1], Admin: len(parts) == 3})
		return nil
	})
	flag.Parse()
	var opts []esdbtest.Option
	if len(users) > 0 {
		opts = append(opts, esdbtest.WithUsers(users...))
	}
	if *tlsDir != "" {
		ca, err := esdbtest.NewCA(*tlsDir)
		if err == nil {
			var cert tls.Certificate
			if cert, err = ca.ServerCertificate("127.0.0.1", "localhost"); err == nil {
				opts = append(opts, esdbtest.WithTLS(cert, ca.File))
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "esdbemu:", err)
			os.Exit(1)
		}
	}
	if err := run(*addr, opts); err != nil {
		fmt.Fprintln(os.Stderr, "esdbemu:", err)
		os.Exit(1)
	}
}

func run(addr string, opts []esdbtest.Option) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := esdbtest.New(opts...)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	fmt.Println(s.ConnectionString(l.Addr().String()))
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
