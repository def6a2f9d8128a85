"""kafka-python client for the sluice compatibility suite.

produce BROKER TOPIC CODEC COUNT: acks=all (kafka-python 2.0 has no
idempotent producer); prints {"acked": n}.
consume BROKER TOPIC COUNT: reads COUNT records from the start of every
partition; prints one JSON object per record.
codecs: prints the codecs this installation supports.
group BROKER TOPIC GROUP SESSION_MS: one consumer-group member; prints the
JSON event lines described in test/compat/group_test.go until SIGTERM.
"""
import json
import signal
import sys

import kafka.codec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def codecs():
    out = ["none", "gzip"]
    if kafka.codec.has_snappy():
        out.append("snappy")
    if kafka.codec.has_lz4():
        out.append("lz4")
    if kafka.codec.has_zstd():
        out.append("zstd")
    print(json.dumps(out))


def produce(broker, topic, codec, count):
    p = KafkaProducer(bootstrap_servers=broker, acks="all", retries=5, linger_ms=5,
                      compression_type=None if codec == "none" else codec)
    futures = []
    for i in range(count):
        key = ("k-%s-%d" % (codec, i)).encode()
        value = ("v-%s-%d-%s" % (codec, i, "sluice" * 8)).encode()
        futures.append(p.send(topic, key=key, value=value,
                              headers=[("idx", str(i).encode()), ("codec", codec.encode())]))
    p.flush(60)
    acked = 0
    errors = []
    for f in futures:
        try:
            f.get(timeout=60)
            acked += 1
        except Exception as e:  # reported to the Go test, which fails on any
            errors.append(repr(e))
    p.close()
    print(json.dumps({"acked": acked, "errors": errors[:5]}))


def consume(broker, topic, count):
    c = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, consumer_timeout_ms=30000)
    parts = sorted(c.partitions_for_topic(topic) or [])
    tps = [TopicPartition(topic, p) for p in parts]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    n = 0
    for m in c:
        h = {k: v.decode() for k, v in (m.headers or [])}
        print(json.dumps({"p": m.partition, "o": m.offset, "k": m.key.decode(), "v": m.value.decode(), "h": h}))
        n += 1
        if n >= count:
            break
    c.close()


def group(broker, topic, group_id, session_ms):
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))

    def emit(ev):
        print(json.dumps(ev), flush=True)

    c = KafkaConsumer(bootstrap_servers=broker, group_id=group_id, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=session_ms,
                      heartbeat_interval_ms=session_ms // 6, max_poll_interval_ms=max(session_ms, 10000))
    c.subscribe([topic])
    last = None
    while not stop[0]:
        batches = c.poll(timeout_ms=100)
        parts = sorted(tp.partition for tp in c.assignment())
        if parts != last:
            emit({"ev": "assign", "parts": parts})
            last = parts
        nxt = {}
        for tp, recs in batches.items():
            for m in recs:
                emit({"ev": "rec", "p": m.partition, "o": m.offset})
                nxt[m.partition] = m.offset + 1
        if nxt:
            try:
                c.commit()  # synchronous: what this poll returned
            except Exception as e:  # a rebalance in between: the next owner re-reads
                sys.stderr.write("commit: %s\n" % e)
                continue
            for p, o in nxt.items():
                emit({"ev": "commit", "p": p, "o": o})
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "codecs":
        codecs()
    elif sys.argv[1] == "group":
        group(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
