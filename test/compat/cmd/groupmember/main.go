// Command groupmember is one consumer-group member for the compatibility
// suite's group tests (test/compat/group_test.go), driving a Go client:
//
//	groupmember CLIENT BROKER TOPIC GROUP SESSION_MS
//
// CLIENT is franz-eager, franz-cooperative, franz-848, sarama or kafka-go.
// It consumes TOPIC in GROUP from the earliest offset, committing
// synchronously after each batch, and prints JSON lines on stdout:
//
//	{"ev":"assign","parts":[0,3]}   its whole assignment, after every change
//	{"ev":"rec","p":0,"o":17}       a record it consumed
//	{"ev":"commit","p":0,"o":18}    an offset it committed (the next to read)
//
// SIGTERM closes the client gracefully (leaving the group); the suite
// SIGKILLs members to simulate a crash. This program exists only for the
// suite; it is not part of sluice.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: groupmember CLIENT BROKER TOPIC GROUP SESSION_MS")
		os.Exit(2)
	}
	client, broker, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	ms, err := strconv.Atoi(os.Args[5])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad SESSION_MS:", err)
		os.Exit(2)
	}
	session := time.Duration(ms) * time.Millisecond
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	out := &emitter{enc: json.NewEncoder(os.Stdout), parts: map[int32]bool{}}
	switch client {
	case "franz-eager", "franz-cooperative", "franz-848":
		err = runFranz(ctx, client, broker, topic, group, session, out)
	case "sarama":
		err = runSarama(ctx, broker, topic, group, session, out)
	case "kafka-go":
		err = runKafkaGo(ctx, broker, topic, group, session, out)
	default:
		err = fmt.Errorf("unknown client %q", client)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "groupmember:", err)
		os.Exit(1)
	}
}

// emitter writes the JSON event lines; safe for concurrent use.
type emitter struct {
	mu    sync.Mutex
	enc   *json.Encoder
	parts map[int32]bool
}

type event struct {
	Ev     string  `json:"ev"`
	Parts  []int32 `json:"parts,omitempty"`
	P      int32   `json:"p"`
	Offset int64   `json:"o"`
}

func (e *emitter) write(ev event) {
	if err := e.enc.Encode(ev); err != nil {
		fmt.Fprintln(os.Stderr, "groupmember: stdout:", err)
		os.Exit(1)
	}
}

func (e *emitter) assignLocked() {
	ps := make([]int32, 0, len(e.parts))
	for p := range e.parts {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	e.write(event{Ev: "assign", Parts: ps})
}

// add and remove change the assignment and print it whole.
func (e *emitter) add(ps ...int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range ps {
		e.parts[p] = true
	}
	e.assignLocked()
}

func (e *emitter) remove(ps ...int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range ps {
		delete(e.parts, p)
	}
	e.assignLocked()
}

// set replaces the assignment.
func (e *emitter) set(ps []int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.parts = map[int32]bool{}
	for _, p := range ps {
		e.parts[p] = true
	}
	e.assignLocked()
}

func (e *emitter) rec(p int32, o int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(event{Ev: "rec", P: p, Offset: o})
}

func (e *emitter) commit(p int32, next int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.write(event{Ev: "commit", P: p, Offset: next})
}
