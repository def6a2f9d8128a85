// Command sluice is the sluice broker and its command-line client in one
// binary: `sluice serve` runs the broker; `sluice topic|produce|consume|group`
// talk to any Kafka-protocol broker (sluice or Kafka) through franz-go.
//
// Data goes to stdout, diagnostics to stderr. Exit codes: 0 success, 1 the
// operation failed, 2 bad usage.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one top-level verb. It returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

// commands is filled by init functions in the files that implement each verb.
var commands = map[string]command{}

func register(name, summary string, run func(args []string) int) {
	if _, dup := commands[name]; dup {
		panic("sluice: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sluice <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "-h", "--help", "help":
		usage()
		os.Exit(0)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(os.Args[2:]))
}
