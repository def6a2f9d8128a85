// Package reliability holds sluice's reliability harnesses: they drive a
// real `sluice serve` child process (built from ./cmd/sluice once per run)
// over the wire and check what it promises under its worst days.
//
// Process crash (crash_test.go): an idempotent acks=all franz-go producer
// writes per-partition sequence numbers to several partitions while another
// client commits consumer-group offsets, and the broker is killed with
// SIGKILL at random moments and restarted on the same data directory,
// SLUICE_KILL_CYCLES times (20 by default). The history is checked
// Jepsen-style by CheckLog and CheckCommits (check.go): every acknowledged
// record present exactly once, at the offset it was acknowledged at, in
// sequence order per partition; committed offsets never behind the last
// acknowledged commit. check_test.go shows both checkers failing on
// fabricated histories.
//
// Hostile input (hostile_test.go): malformed and abusive traffic on the
// Kafka port, each case against a broker child whose resident set size is
// read from /proc before and after.
//
// Disk full (diskfull_test.go): a broker whose data directory is a 64 MiB
// tmpfs, produced to until the disk is full, then given space back.
package reliability
