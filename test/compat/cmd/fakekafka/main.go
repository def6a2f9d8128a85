// Command fakekafka runs an in-memory single-broker Kafka cluster (franz-go's
// kfake) on loopback, for developing the compatibility suite's client
// scripts without sluice:
//
//	go run ./test/compat/cmd/fakekafka -port 19092 &
//	SLUICE_COMPAT_BROKERS=127.0.0.1:19092 go test ./test/compat/
//
// kfake keeps nothing on disk, so the suite skips its restart and SIGKILL
// checks against it. This program is a harness development aid only; it is
// not part of sluice and never runs in CI.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 19092, "loopback port to listen on")
	flag.Parse()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.AllowAutoTopicCreation())
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakekafka:", err)
		os.Exit(1)
	}
	fmt.Println("fakekafka listening on", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	c.Close()
}
