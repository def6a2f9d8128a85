// Package group is sluice's group coordinator: the classic consumer-group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the KIP-848
// consumer protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) with
// server-side assignors, committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete) and group administration (DescribeGroups, ListGroups,
// DeleteGroups).
//
// Structure: every group is an actor. One goroutine (group.run) owns all
// of a group's state; Handle posts closures to it and waits for a reply.
// A request that must wait (a JoinGroup during a rebalance, a SyncGroup from
// a follower, an OffsetCommit until its bytes are fsynced) parks its reply
// function in the group state and is answered later by the same goroutine.
// Time, including timers, comes from an injectable Clock, so the state
// machines can be driven deterministically by the scripts in testdata/.
//
// Ownership: Coordinator.mu guards only the map of groups; every field of
// a group below its channels is owned by the group's goroutine;
// group.durableMu guards only the queue through which the log's committer
// hands fsync completions to that goroutine (it never blocks the
// committer). No goroutine holds a lock while waiting for another.
//
// Files: coordinator.go (Config, New, Close, APIs, Handle), actor.go (the
// group goroutine, persistence hooks), classic.go, consumer.go and
// assign.go (the two protocols and the server-side assignors), offsets.go,
// admin.go, journal.go (record formats, the offsets log), compact.go.
//
// Durability: offsets and group metadata are records in one internal log,
// "__consumer_offsets-0", opened on the shared log.Store with the fsync
// policy. Keys and values use Kafka's __consumer_offsets layouts
// (OffsetCommitKey/Value, GroupMetadataKey/Value; see journal.go) plus
// sluice's own KIP-848 member records (memberlog.go). An
// OffsetCommit is answered only after Store.WhenDurable reported its batch
// fsynced, and its offsets become visible to OffsetFetch at that moment;
// likewise a SyncGroup (the leader's assignments) and a
// ConsumerGroupHeartbeat that changed a member.
// New replays the log before it returns. The log is compacted (the live
// state rewritten, the prefix before it dropped) at startup and in the
// background once enough history has accumulated; see compact.go.
//
// Client identity: the protocol layer may attach the request header's
// client id and the peer address with WithClient; they prefix member ids
// and appear in DescribeGroups and ConsumerGroupDescribe.
//
// Mixed protocols: a classic group with members cannot be joined through
// ConsumerGroupHeartbeat (GROUP_ID_NOT_FOUND) and a consumer group with
// members cannot be joined through JoinGroup (INCONSISTENT_GROUP_PROTOCOL).
// An empty group of either type (offsets only) is converted on the first
// join of the other type; its offsets are kept. This is Kafka's behaviour
// with group.consumer.migration.policy=disabled; online migration of a
// populated group is not implemented.
//
// What it must never do: make a group's goroutine wait for an fsync or for
// another group (appends go to the page cache; durability is a callback);
// put a Go error string on the wire (every failure is a Kafka error code in
// the response); read the wall clock directly; answer an OffsetCommit
// before its bytes are durable.
package group
