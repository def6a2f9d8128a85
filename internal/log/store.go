package log

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-mq/sluice/internal/vfs"
)

var errNotExist = fs.ErrNotExist

// Store-level files. Part of the on-disk format.
const (
	checkpointFile = "checkpoint"
	// journalLogMarker exists in a data directory used in journal-log
	// mode: its journal-backed segments exist only in the journal, which
	// the other mode would retire after replaying it into segments it
	// cannot place.
	journalLogMarker = "journal-log"
	// deletedDirPrefix starts the name a deleted log's directory is renamed
	// to before removal: fixed length (whatever the log's name, so a
	// 255-byte name stays legal) and with a '~', which no topic name has.
	deletedDirPrefix  = "~deleted-"
	checkpointMagic   = "SLCP"
	checkpointVersion = 1
)

// Store owns one data directory: a directory per partition log, the shared
// journal (<dir>/journal) and the checkpoint file that records, per log,
// the point up to which its segments are known durable and valid.
//
// Goroutines: the committer (group commit) and one maintenance goroutine
// (journal checkpoints, interval-policy flushes, retention). Both stop in
// Close.
type Store struct {
	fs     vfs.FS
	dir    string
	opts   StoreOptions
	logger Logger

	mu       sync.Mutex // guards logs, creating and closed
	logs     map[string]*Log
	creating map[string]chan struct{} // closed when the creation ends
	closed   bool

	commit *committer
	fatal  atomic.Pointer[error]

	// journalLog: StoreOptions.JournalLog (and not PerFileSync).
	journalLog bool
	jmu        sync.Mutex // guards jfiles; a leaf in the lock order
	// jfiles are the journal files open for journal-backed segments, by
	// sequence (journal-log mode).
	jfiles map[uint64]*jfile
	// recent keeps the newest commit groups in memory (journal-log mode).
	recent recentCache
	// cleanMu serialises journal cleaning (jclean.go).
	cleanMu sync.Mutex
	// covered is the highest journal sequence a checkpoint has covered:
	// files up to it go once nothing refers to them (ckptMu).
	covered uint64

	ckptMu sync.Mutex // serialises checkpoints

	freeMu sync.Mutex // guards free; a leaf in the lock order
	// free lists recycled journal files (<seq>.free), oldest first.
	free []string

	// prepMu guards prepared and lastTaken, and is held while the next
	// journal file is being opened (by either goroutine), so two files never
	// race for one name. Before freeMu in the lock order.
	prepMu sync.Mutex
	// prepared is the next journal file, opened ahead by the maintenance
	// goroutine after a checkpoint, so that a rotation does not wait for
	// the rename and directory fsync (43 ms in the committer's path during
	// one slow-disk stretch of a 50 MB/s run). nil if none.
	prepared *preparedJournal
	// lastTaken is the sequence of the newest journal file the committer
	// has taken; only lastTaken+1 is ever prepared.
	lastTaken uint64

	// tailBudget is how many bytes of segment write buffers are left to
	// lend (tailfile.go).
	tailBudget atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup

	// Counters.
	recoveredTruncatedBytes atomic.Int64
	journalTornBytes        atomic.Int64
	checkpoints             atomic.Int64
	journalReused           atomic.Int64
	journalPrepared         atomic.Int64
	materialized            atomic.Int64
	indexedReplays          atomic.Int64
	journalPunchedSkipped   atomic.Int64

	// punches: dead journal-backed segments to punch (journal-log mode).
	punches punchQueue
}

// Stats are counters a Store keeps for metrics and tests.
type Stats struct {
	// RecoveryTruncatedBytes: bytes of torn or corrupt segment tails cut at
	// open.
	RecoveryTruncatedBytes int64
	// JournalTornBytes: bytes of torn journal tail discarded at open.
	JournalTornBytes int64
	Checkpoints      int64
	// JournalReused: journal rotations that reused a recycled file.
	JournalReused int64
	// JournalPrepared: journal rotations that found the next file opened
	// ahead of time.
	JournalPrepared int64
	// Materialized: journal-backed segments the cleaner copied into
	// ordinary segment files (journal-log mode).
	Materialized int64
	// IndexedReplays: journal files recovery replayed from their index
	// files, without reading their records (journal-log mode).
	IndexedReplays int64
	// JournalPunchedBytes: journal bytes of dead records whose disk space
	// was given back by hole punching (journal-log mode).
	JournalPunchedBytes int64
	// JournalPunchedEntries: punched journal entries recovery stepped over.
	JournalPunchedEntries int64
	// Durable is the last durable ticket.
	Durable uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		RecoveryTruncatedBytes: s.recoveredTruncatedBytes.Load(),
		JournalTornBytes:       s.journalTornBytes.Load(),
		Checkpoints:            s.checkpoints.Load(),
		JournalReused:          s.journalReused.Load(),
		JournalPrepared:        s.journalPrepared.Load(),
		Materialized:           s.materialized.Load(),
		IndexedReplays:         s.indexedReplays.Load(),
		JournalPunchedBytes:    s.punches.bytes.Load(),
		JournalPunchedEntries:  s.journalPunchedSkipped.Load(),
		Durable:                s.commit.durable.Load(),
	}
}

type nopLogger struct{}

func (nopLogger) Warn(string, ...any) {}
func (nopLogger) Info(string, ...any) {}

func (o StoreOptions) withDefaults() StoreOptions {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = nopLogger{}
	}
	if o.JournalCheckpointBytes <= 0 {
		o.JournalCheckpointBytes = 64 << 20
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Minute
	}
	if o.RetentionCheckInterval == 0 {
		o.RetentionCheckInterval = 5 * time.Minute
	}
	return o
}

func (s *Store) now() time.Time { return s.opts.Clock() }

func (s *Store) fatalErr() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// setFatal records a failed fsync. The store then refuses every append and
// fails every waiting ticket: after a failed fsync the kernel may have
// dropped the dirty pages, so retrying could report success for lost data.
func (s *Store) setFatal(err error) {
	err = fmt.Errorf("%w: %v", ErrStorage, err)
	if s.fatal.CompareAndSwap(nil, &err) {
		s.logger.Warn("log store failed; appends refused until restart", "err", err)
	}
}

// OpenStore opens the store in dir, creating it if needed, and recovers it:
// each partition log's tail after its checkpointed recovery point is
// validated batch by batch (a torn tail is cut and reported), then the
// journal is replayed into the logs, and a fresh checkpoint is written.
func OpenStore(fsys vfs.FS, dir string, opts StoreOptions) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{
		fs: fsys, dir: dir, opts: opts, logger: opts.Logger,
		logs: make(map[string]*Log), creating: make(map[string]chan struct{}),
		stop: make(chan struct{}),
	}
	s.tailBudget.Store(tailBudget)
	s.journalLog = opts.JournalLog && !opts.PerFileSync
	s.jfiles = make(map[uint64]*jfile)
	s.commit = &committer{
		store: s, perFile: opts.PerFileSync,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		rotated: make(chan uint64, 1),
	}
	s.commit.cp.wake, s.commit.cp.done = make(chan struct{}, 1), make(chan struct{}, 1)
	if err := fsys.MkdirAll(path.Join(dir, journalDir)); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// Make the directories themselves durable before anything in them is
	// acknowledged.
	for _, d := range []string{path.Dir(dir), dir} {
		if err := fsys.SyncDir(d); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	if err := s.checkMode(); err != nil {
		return nil, err
	}
	points, err := s.readCheckpoint()
	if err != nil {
		return nil, err
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	for _, name := range names {
		if name == journalDir {
			continue
		}
		_, isDir, err := fsys.Stat(path.Join(dir, name))
		if err != nil || !isDir {
			continue
		}
		if strings.HasPrefix(name, deletedDirPrefix) {
			if err := fsys.RemoveAll(path.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("remove deleted log %s: %w", name, err)
			}
			continue
		}
		var cp *checkpointEntry
		if e, ok := points[name]; ok {
			cp = &e
		}
		l, err := s.openLog(name, cp)
		if err != nil {
			s.closeLogs()
			return nil, err
		}
		s.logs[name] = l
	}
	lastSeq, err := s.replayJournal()
	if err != nil {
		s.closeLogs()
		return nil, err
	}
	if err := s.checkpoint(lastSeq, false); err != nil {
		s.closeLogs()
		return nil, err
	}
	// Recycled files left by the previous run go: a recycled file is
	// reused only under a sequence above every sequence it has held, and
	// only this run's files are known to satisfy that.
	freeSeq, err := s.removeFreeJournals()
	if err != nil {
		s.closeLogs()
		return nil, err
	}
	seq := max(lastSeq, freeSeq) + 1
	f, err := createJournal(fsys, path.Join(dir, journalDir, journalName(seq)))
	if err == nil {
		err = fsys.SyncDir(path.Join(dir, journalDir))
	}
	if err != nil {
		s.closeLogs()
		return nil, fmt.Errorf("create journal: %w", err)
	}
	s.commit.file, s.commit.fileSeq = f, seq
	s.lastTaken = seq
	if s.journalLog {
		s.commit.jf = s.addJFile(seq, f, 1)
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.commit.run() }()
	go func() { defer s.wg.Done(); s.maintain() }()
	return s, nil
}

// Open returns the partition log called name, creating it if it does not
// exist, with cfg as its configuration. Creation (a few fsyncs) runs
// without the store lock, so many logs can be created concurrently.
func (s *Store) Open(name string, cfg Config) (*Log, error) {
	if err := validLogName(name); err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if l, ok := s.logs[name]; ok {
			s.mu.Unlock()
			l.SetConfig(cfg)
			return l, nil
		}
		if wait, busy := s.creating[name]; busy {
			s.mu.Unlock()
			<-wait
			continue
		}
		done := make(chan struct{})
		s.creating[name] = done
		s.mu.Unlock()

		l, err := s.createLog(name, cfg)
		s.mu.Lock()
		delete(s.creating, name)
		close(done)
		if err == nil {
			if s.closed {
				err = ErrClosed
				l.close()
			} else {
				s.logs[name] = l
			}
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

// Lookup returns an open log by name.
func (s *Store) Lookup(name string) (*Log, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[name]
	return l, ok
}

func validLogName(name string) error {
	if name == "" || name == "." || name == ".." || name == journalDir || strings.ContainsAny(name, "/\\\x00") ||
		strings.HasPrefix(name, deletedDirPrefix) || len(name) > 255 {
		return fmt.Errorf("log: invalid log name %q", name)
	}
	return nil
}

func (s *Store) createLog(name string, cfg Config) (*Log, error) {
	dir := path.Join(s.dir, name)
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	inc := binary.BigEndian.Uint64(b[:]) | 1
	if err := s.fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("create log %s: %w", name, err)
	}
	// The meta file need not be replaced atomically: nothing is
	// acknowledged before creation returns, and a torn meta file reads as
	// missing, which gives the log a fresh incarnation.
	mf, err := s.fs.Create(path.Join(dir, metaFile))
	if err == nil {
		var m [12]byte
		binary.BigEndian.PutUint64(m[:], inc)
		binary.BigEndian.PutUint32(m[8:], crc32c(m[:8]))
		if _, err = mf.WriteAt(m[:], 0); err == nil {
			err = mf.Sync()
		}
		if cerr := mf.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", name, err)
	}
	var seg *segment
	if s.journalLog {
		seg = createJournalSegment(s.fs, dir, 0, s.now())
	} else if seg, err = createSegment(s.fs, dir, 0, s.now(), &s.tailBudget); err != nil {
		return nil, err
	}
	// One directory fsync makes meta and the segment's entries durable,
	// one more the log directory's own entry.
	if err := s.fs.SyncDir(dir); err != nil {
		seg.release()
		return nil, fmt.Errorf("create log %s: %w", name, err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		seg.release()
		return nil, fmt.Errorf("create log %s: %w", name, err)
	}
	l := &Log{store: s, name: name, dir: dir, incarnation: inc, active: seg}
	l.publishSegmentsLocked([]*segment{seg})
	l.SetConfig(cfg)
	return l, nil
}

// FS is the file system the store writes through.
func (s *Store) FS() vfs.FS { return s.fs }

// Dir is the store's data directory.
func (s *Store) Dir() string { return s.dir }

// Names lists the open partition logs, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.logs))
	for n := range s.logs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *Store) snapshotLogs() []*Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	return logs
}

// Delete closes and removes a partition log. Journal entries for it are
// never replayed afterwards, even if a log of the same name is created: each
// log carries a random incarnation that its journal entries must match.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	l, ok := s.logs[name]
	if ok {
		delete(s.logs, name)
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("log: delete %s: %w", name, errNotExist)
	}
	gone := path.Join(s.dir, fmt.Sprintf("%s%016x", deletedDirPrefix, l.incarnation))
	if err := s.fs.Rename(l.dir, gone); err != nil {
		l.close()
		return fmt.Errorf("log: delete %s: %w", name, err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		l.close()
		return fmt.Errorf("log: delete %s: %w", name, err)
	}
	// Durably gone: its records in the journal files can be punched out.
	l.closeDead()
	if err := s.fs.RemoveAll(gone); err != nil {
		return fmt.Errorf("log: delete %s: %w", name, err)
	}
	return nil
}

type chanNotifier chan error

func (c chanNotifier) Durable(err error) { c <- err }

// Sync makes everything appended so far durable, whatever each log's
// policy, and waits for it.
func (s *Store) Sync() error {
	s.commit.mu.Lock()
	t := Ticket(s.commit.appended)
	s.commit.mu.Unlock()
	done := make(chanNotifier, 1)
	s.WhenDurable(t, done)
	select {
	case s.commit.wake <- struct{}{}:
	default: // a cycle is already due
	}
	if err := <-done; err != nil {
		return err
	}
	for _, l := range s.snapshotLogs() {
		if err := l.syncFiles(false); err != nil {
			return err
		}
		if !s.journalLog { // there every append moves it with its group
			l.publishHW(l.nextOffset.Load())
		}
	}
	return nil
}

// EnforceRetention applies every log's retention once.
func (s *Store) EnforceRetention() error {
	now := s.now()
	var first error
	for _, l := range s.snapshotLogs() {
		if err := l.enforceRetention(now); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Checkpoint fsyncs every log's files and records the recovery points, so a
// restart validates nothing older.
func (s *Store) Checkpoint() error { return s.checkpoint(0, false) }

// maintain runs journal checkpoints, interval-policy flushes and retention.
func (s *Store) maintain() {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastCheckpoint, lastRetention := s.now(), s.now()
	for {
		select {
		case <-s.stop:
			return
		case seq := <-s.commit.rotated:
			if err := s.checkpoint(seq, true); err != nil {
				s.logger.Warn("journal checkpoint failed", "err", err)
			} else {
				// After the checkpoint, which may just have freed a
				// file to recycle.
				s.prepareJournalFile()
				if s.journalLog {
					s.cleanJournal()
				}
			}
			lastCheckpoint = s.now()
		case <-tick.C:
			s.punches.drain()
			now := s.now()
			for _, l := range s.snapshotLogs() {
				cfg := l.Config()
				if cfg.Durability.Kind == DurabilityInterval && now.Sub(l.lastSyncTime()) >= cfg.Durability.Interval {
					if err := l.syncFiles(false); err != nil {
						s.logger.Warn("interval flush failed", "log", l.name, "err", err)
					}
				}
			}
			if now.Sub(lastCheckpoint) >= s.opts.CheckpointInterval {
				if err := s.checkpoint(0, false); err != nil {
					s.logger.Warn("checkpoint failed", "err", err)
				}
				lastCheckpoint = now
			}
			if s.opts.RetentionCheckInterval > 0 && now.Sub(lastRetention) >= s.opts.RetentionCheckInterval {
				if err := s.EnforceRetention(); err != nil {
					s.logger.Warn("retention failed", "err", err)
				}
				lastRetention = now
			}
		}
	}
}

func (l *Log) lastSyncTime() time.Time {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.lastSync
}

// Close makes everything durable, writes a final checkpoint (so the next
// open validates nothing) and closes every log and the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.commit.close()
	s.wg.Wait()
	s.dropPrepared()
	err := s.checkpoint(s.commit.fileSeq, false)
	if _, e := s.removeFreeJournals(); err == nil {
		err = e
	}
	s.closeLogs()
	return err
}

func (s *Store) closeLogs() {
	for _, l := range s.snapshotLogs() {
		l.close()
	}
}

// checkpointEntry is one log's line in the checkpoint file.
type checkpointEntry struct {
	incarnation uint64
	point       recoveryPoint
}

// checkpoint fsyncs all logs (segments and indexes), writes the checkpoint
// file, then retires journal files up to journalSeq (0: none), whose entries
// the fsynced segments now hold: with recycle, the newest of them are kept
// for reuse (up to journalFreeFiles), the others deleted.
//
// Checkpoint file format (part of the on-disk format), replaced atomically:
//
//	"SLCP" version:uint32 count:uint32
//	count × { nameLength:uint16 name incarnation:uint64
//	          segmentBase:int64 position:int64 nextOffset:int64 }
//	crc:uint32 (CRC-32C of everything before it)
func (s *Store) checkpoint(journalSeq uint64, recycle bool) error {
	// Dead segments first: the files only they held can go below.
	s.punches.drain()
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	if err := s.fatalErr(); err != nil {
		return err
	}
	logs := s.snapshotLogs()
	sort.Slice(logs, func(i, j int) bool { return logs[i].name < logs[j].name })
	b := append([]byte(checkpointMagic), 0, 0, 0, checkpointVersion)
	b = binary.BigEndian.AppendUint32(b, 0)
	count := 0
	for _, l := range logs {
		// A store that failed (or is being abandoned) while this
		// checkpoint ran must not write one: the logs it would leave out
		// would lose their journal entries with the files it retires.
		if err := s.fatalErr(); err != nil {
			return err
		}
		if l.failed.Load() != nil {
			continue // offline logs keep no recovery point: they rescan
		}
		if err := l.syncFiles(true); err != nil {
			return err
		}
		l.syncMu.Lock()
		rp := l.recovery
		l.syncMu.Unlock()
		b = binary.BigEndian.AppendUint16(b, uint16(len(l.name)))
		b = append(b, l.name...)
		b = binary.BigEndian.AppendUint64(b, l.incarnation)
		b = binary.BigEndian.AppendUint64(b, uint64(rp.base))
		b = binary.BigEndian.AppendUint64(b, uint64(rp.pos))
		b = binary.BigEndian.AppendUint64(b, uint64(rp.next))
		count++
	}
	if err := s.fatalErr(); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(b[8:], uint32(count))
	b = binary.BigEndian.AppendUint32(b, crc32c(b))
	if traceHook != nil {
		trace("checkpoint write seq %d", journalSeq)
	}
	err := writeFileAtomic(s.fs, s.dir, checkpointFile, b)
	if err != nil && s.releaseSpare(err) {
		err = writeFileAtomic(s.fs, s.dir, checkpointFile, b)
	}
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		// The previous checkpoint file stands and the journal files it
		// needs are kept: a full disk postpones checkpoints, it does not
		// fail the store.
		_ = s.fs.Remove(path.Join(s.dir, checkpointFile+".tmp"))
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err != nil {
		s.setFatal(fmt.Errorf("write checkpoint: %w", err))
		return s.fatalErr()
	}
	s.checkpoints.Add(1)
	if s.journalLog {
		// Files a checkpoint once covered go as soon as no segment refers
		// to them, at this or a later checkpoint; those still in use get
		// their index files.
		s.covered = max(s.covered, journalSeq)
		journalSeq = s.covered
		if err := s.writeJournalIndexes(journalSeq); err != nil {
			return err
		}
	}
	if journalSeq == 0 {
		return nil
	}
	jdir := path.Join(s.dir, journalDir)
	names, err := s.fs.ReadDir(jdir)
	if err != nil {
		return fmt.Errorf("list journal: %w", err)
	}
	var retire []uint64
	for _, n := range names {
		if seq, ok := parseJournalName(n); ok && seq <= journalSeq && !s.jfileInUse(seq) {
			retire = append(retire, seq)
		}
	}
	slices.Sort(retire)
	keep := 0
	if recycle {
		s.freeMu.Lock()
		keep = min(len(retire), journalFreeFiles-len(s.free))
		s.freeMu.Unlock()
	}
	for i, seq := range retire {
		n := path.Join(jdir, journalName(seq))
		if s.journalLog {
			// Its index first: an index never outlives its file (one
			// left by a crash is removed at the next open).
			if err := s.fs.Remove(path.Join(jdir, journalIndexName(seq))); err != nil && !errors.Is(err, errNotExist) {
				return fmt.Errorf("remove journal index: %w", err)
			}
		}
		if i >= len(retire)-keep {
			// The newest retired files are the ones kept.
			free := path.Join(jdir, freeJournalName(seq))
			if traceHook != nil {
				trace("checkpoint recycle %s", n)
			}
			if err := s.fs.Rename(n, free); err != nil {
				return fmt.Errorf("recycle journal file: %w", err)
			}
			s.freeMu.Lock()
			s.free = append(s.free, free)
			s.freeMu.Unlock()
			continue
		}
		if traceHook != nil {
			trace("checkpoint delete %s", n)
		}
		if err := s.fs.Remove(n); err != nil {
			return fmt.Errorf("remove journal file: %w", err)
		}
	}
	if len(retire) > 0 {
		if err := s.fs.SyncDir(jdir); err != nil {
			return fmt.Errorf("fsync journal directory: %w", err)
		}
	}
	return nil
}

// writeJournalIndexes writes the index file of every sealed journal file
// up to seq that is still in use and has none (journal-log mode).
func (s *Store) writeJournalIndexes(upTo uint64) error {
	s.jmu.Lock()
	var todo []*jfile
	for seq, j := range s.jfiles {
		if seq <= upTo && !j.indexed && j.refs.Load() > 0 {
			todo = append(todo, j)
		}
	}
	s.jmu.Unlock()
	jdir := path.Join(s.dir, journalDir)
	for _, j := range todo {
		// The file is sealed: nothing appends to entries any more.
		s.commit.mu.Lock()
		es := j.entries
		s.commit.mu.Unlock()
		if err := writeFileAtomic(s.fs, jdir, journalIndexName(j.seq), encodeJournalIndex(j.seq, es)); err != nil {
			_ = s.fs.Remove(path.Join(jdir, journalIndexName(j.seq)+".tmp"))
			return fmt.Errorf("write journal index %d: %w", j.seq, err)
		}
		j.indexed = true
		s.commit.mu.Lock()
		j.entries = nil
		s.commit.mu.Unlock()
	}
	return nil
}

// addJFile registers journal file seq, open as f, with refs references.
func (s *Store) addJFile(seq uint64, f vfs.File, refs int32) *jfile {
	j := &jfile{seq: seq, f: f, recent: &s.recent, punches: &s.punches}
	if rf, err := s.fs.Open(f.Name()); err == nil {
		j.rf = rf // the committer's handle may be O_DIRECT
	}
	j.refs.Store(refs)
	s.jmu.Lock()
	s.jfiles[seq] = j
	s.jmu.Unlock()
	return j
}

// jfileInUse reports whether a journal-backed segment (or the committer)
// still refers to journal file seq; one that nothing refers to is
// forgotten, as it never gains a reference again.
func (s *Store) jfileInUse(seq uint64) bool {
	if !s.journalLog {
		return false
	}
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j, ok := s.jfiles[seq]
	if !ok {
		return false
	}
	if j.refs.Load() > 0 {
		return true
	}
	delete(s.jfiles, seq)
	return false
}

// checkMode marks a data directory used in journal-log mode, and converts
// one written in that mode to segment files when opened without it
// (convert.go).
func (s *Store) checkMode() error {
	marker := path.Join(s.dir, journalLogMarker)
	_, _, err := s.fs.Stat(marker)
	has := err == nil
	switch {
	case has && !s.journalLog:
		s.logger.Info("converting a journal-log data directory to segment files", "dir", s.dir)
		n, err := convertToSegmentFiles(s.fs, s.dir, s.opts)
		if err != nil {
			return err
		}
		s.logger.Info("converted to segment files", "dir", s.dir, "segments_copied", n)
	case !has && s.journalLog:
		if err := writeFileAtomic(s.fs, s.dir, journalLogMarker, nil); err != nil {
			return fmt.Errorf("open store %s: %w", s.dir, err)
		}
	}
	return nil
}

func parseJournalName(n string) (uint64, bool) { return parseSeqName(n, journalSuffix) }

func freeJournalName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, journalFreeSuffix) }

func parseSeqName(n, suffix string) (uint64, bool) {
	v, ok := strings.CutSuffix(n, suffix)
	if !ok || len(v) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(v, 10, 64)
	return seq, err == nil
}

// journalFreeFiles is how many retired journal files are kept for reuse.
// Two cover a rotation that comes before the previous checkpoint ended.
const journalFreeFiles = 2

// preparedJournal is a journal file opened before its turn.
type preparedJournal struct {
	seq  uint64
	f    vfs.File
	size int64
}

// prepareJournalFile opens the file the next rotation will take, if it is
// not open yet. A failure is left for the rotation to meet (and report).
//
// A prepared file is safe at any crash point: it is named after the
// current file, which has no seal yet, so recovery ends the journal before
// it and removes it, as it does a file the committer opened in a rotation
// a crash interrupted. A recycled file keeps its previous entries until
// overwritten, and they carry an older sequence.
func (s *Store) prepareJournalFile() {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if s.prepared != nil {
		return
	}
	seq := s.lastTaken + 1
	f, size, err := s.nextJournalFile(seq)
	if err != nil {
		return
	}
	s.prepared = &preparedJournal{seq: seq, f: f, size: size}
}

// takeJournalFile returns the journal file for sequence seq: the prepared
// one, or one opened now.
func (s *Store) takeJournalFile(seq uint64) (vfs.File, int64, error) {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if p := s.prepared; p != nil && p.seq == seq {
		s.prepared = nil
		s.lastTaken = seq
		s.journalPrepared.Add(1)
		return p.f, p.size, nil
	}
	f, size, err := s.nextJournalFile(seq)
	if err == nil {
		s.lastTaken = seq
	}
	return f, size, err
}

// dropPrepared closes and removes the prepared file, if any: at Close, and
// on a full disk (where a recycled file's blocks are worth having back).
// Whether it is removed or a crash leaves it, recovery treats it as the
// empty tail it is. Reports whether it removed one that held space.
func (s *Store) dropPrepared() bool {
	s.prepMu.Lock()
	p := s.prepared
	s.prepared = nil
	s.prepMu.Unlock()
	if p == nil {
		return false
	}
	p.f.Close()
	return s.fs.Remove(path.Join(s.dir, journalDir, journalName(p.seq))) == nil && p.size > 0
}

// nextJournalFile opens the journal file for sequence seq, durably named:
// a recycled file if one is free (size is then how far its blocks are
// written), else a new one (size 0).
func (s *Store) nextJournalFile(seq uint64) (f vfs.File, size int64, err error) {
	jdir := path.Join(s.dir, journalDir)
	name := path.Join(jdir, journalName(seq))
	s.freeMu.Lock()
	var old string
	if len(s.free) > 0 {
		old = s.free[0]
		s.free = s.free[1:]
	}
	s.freeMu.Unlock()
	if old != "" {
		f, size, err = s.reuseJournal(old, name)
		if err == nil {
			return f, size, nil
		}
		s.logger.Warn("journal file not recycled; creating a new one", "file", old, "err", err)
		_ = s.fs.Remove(old)
	}
	f, err = createJournal(s.fs, name)
	if err == nil {
		if err = s.fs.SyncDir(jdir); err != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, 0, err
	}
	return f, 0, nil
}

// reuseJournal renames the recycled file old to name and opens it.
func (s *Store) reuseJournal(old, name string) (vfs.File, int64, error) {
	if err := s.fs.Rename(old, name); err != nil {
		return nil, 0, err
	}
	f, err := openJournal(s.fs, name)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.Size()
	if err == nil {
		err = s.fs.SyncDir(path.Dir(name))
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if traceHook != nil {
		trace("journal reuse %s as %s size %d", old, name, size)
	}
	s.journalReused.Add(1)
	return f, size &^ (vfs.DirectAlign - 1), nil
}

// releaseSpare gives the recycled journal files' space back when err is
// ENOSPC, and reports whether it removed any (so the caller may retry once).
func (s *Store) releaseSpare(err error) bool {
	if !errors.Is(err, syscall.ENOSPC) {
		return false
	}
	s.freeMu.Lock()
	free := s.free
	s.free = nil
	s.freeMu.Unlock()
	removed := 0
	if s.dropPrepared() {
		removed++
	}
	for _, f := range free {
		if s.fs.Remove(f) == nil {
			removed++
		}
	}
	if removed > 0 {
		s.logger.Warn("disk full: removed recycled journal files to make room", "files", removed)
	}
	return removed > 0
}

// removeFreeJournals deletes every recycled journal file and returns the
// highest sequence any of them held.
func (s *Store) removeFreeJournals() (uint64, error) {
	s.freeMu.Lock()
	s.free = nil
	s.freeMu.Unlock()
	jdir := path.Join(s.dir, journalDir)
	names, err := s.fs.ReadDir(jdir)
	if err != nil {
		return 0, fmt.Errorf("list journal: %w", err)
	}
	var high uint64
	for _, n := range names {
		seq, ok := parseSeqName(n, journalFreeSuffix)
		if !ok {
			continue
		}
		high = max(high, seq)
		if err := s.fs.Remove(path.Join(jdir, n)); err != nil {
			return 0, fmt.Errorf("remove recycled journal file: %w", err)
		}
	}
	return high, nil
}

func (s *Store) readCheckpoint() (map[string]checkpointEntry, error) {
	points := make(map[string]checkpointEntry)
	b, ok := readWhole(s.fs, path.Join(s.dir, checkpointFile))
	if !ok {
		return points, nil
	}
	bad := func(why string) (map[string]checkpointEntry, error) {
		// The checkpoint is written atomically, so damage means the disk
		// lied. Every log is then recovered by a full scan, which is slow
		// but loses nothing.
		s.logger.Warn("checkpoint file unusable; scanning every log", "why", why)
		return map[string]checkpointEntry{}, nil
	}
	if len(b) < 16 || string(b[:4]) != checkpointMagic || crc32c(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return bad("bad header or crc")
	}
	if v := binary.BigEndian.Uint32(b[4:]); v != checkpointVersion {
		return nil, fmt.Errorf("%w: checkpoint version %d not supported", ErrStorage, v)
	}
	n := int(binary.BigEndian.Uint32(b[8:]))
	p := 12
	for range n {
		if p+2 > len(b)-4 {
			return bad("truncated")
		}
		nl := int(binary.BigEndian.Uint16(b[p:]))
		p += 2
		if p+nl+32 > len(b)-4 {
			return bad("truncated")
		}
		name := string(b[p : p+nl])
		p += nl
		points[name] = checkpointEntry{
			incarnation: binary.BigEndian.Uint64(b[p:]),
			point: recoveryPoint{
				base: int64(binary.BigEndian.Uint64(b[p+8:])),
				pos:  int64(binary.BigEndian.Uint64(b[p+16:])),
				next: int64(binary.BigEndian.Uint64(b[p+24:])),
			},
		}
		p += 32
	}
	return points, nil
}

// errSkip marks journal entries for logs that no longer exist.
var errSkip = errors.New("skip")

// Abandon stops the store's goroutines and closes its files without writing
// anything more: what a crash leaves behind. For crash tests, after the
// file system under the store has simulated power loss.
func (s *Store) Abandon() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.setFatal(errors.New("store abandoned"))
	close(s.stop)
	s.commit.close()
	s.wg.Wait()
	s.closeLogs()
}

// traceHook, when set by a test, receives a line for each journal and
// checkpoint event. Nil in production.
var traceHook func(format string, args ...any)

func trace(format string, args ...any) {
	if traceHook != nil {
		traceHook(format, args...)
	}
}
