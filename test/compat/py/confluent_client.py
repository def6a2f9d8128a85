"""confluent-kafka (librdkafka) client for the sluice compatibility suite.

produce BROKER TOPIC CODEC COUNT: idempotent, acks=all; prints {"acked": n}.
consume BROKER TOPIC COUNT: reads COUNT records from the start of every
partition; prints one JSON object per record.
group BROKER TOPIC GROUP SESSION_MS: one consumer-group member; prints the
JSON event lines described in test/compat/group_test.go until SIGTERM.
"""
import json
import signal
import sys

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING


def produce(broker, topic, codec, count):
    p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "acks": "all",
                  "compression.type": codec, "linger.ms": 5})
    acked = [0]
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    for i in range(count):
        key = "k-%s-%d" % (codec, i)
        value = "v-%s-%d-%s" % (codec, i, "sluice" * 8)
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=[("idx", str(i)), ("codec", codec)],
                          on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    p.flush(60)
    print(json.dumps({"acked": acked[0], "errors": errors[:5]}))


def consume(broker, topic, count):
    c = Consumer({"bootstrap.servers": broker, "group.id": "compat-confluent", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=20)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    n = 0
    idle = 0
    while n < count and idle < 300:
        m = c.poll(0.1)
        if m is None:
            idle += 1
            continue
        if m.error():
            sys.stderr.write("consume error: %s\n" % m.error())
            continue
        idle = 0
        h = {k: v.decode() for k, v in (m.headers() or [])}
        print(json.dumps({"p": m.partition(), "o": m.offset(), "k": m.key().decode(), "v": m.value().decode(),
                          "h": h}))
        n += 1
    c.close()


def group(broker, topic, group_id, session_ms):
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    parts = set()

    def emit(ev):
        print(json.dumps(ev), flush=True)

    def assigned(_c, tps):
        parts.update(tp.partition for tp in tps)
        emit({"ev": "assign", "parts": sorted(parts)})

    def revoked(_c, tps):
        parts.difference_update(tp.partition for tp in tps)
        emit({"ev": "assign", "parts": sorted(parts)})

    c = Consumer({"bootstrap.servers": broker, "group.id": group_id, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": session_ms,
                  "heartbeat.interval.ms": session_ms // 6})
    c.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    while not stop[0]:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            sys.stderr.write("consume error: %s\n" % m.error())
            continue
        emit({"ev": "rec", "p": m.partition(), "o": m.offset()})
        try:
            c.commit(message=m, asynchronous=False)
        except Exception as e:  # a rebalance in between: the next owner re-reads
            sys.stderr.write("commit: %s\n" % e)
            continue
        emit({"ev": "commit", "p": m.partition(), "o": m.offset() + 1})
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "group":
        group(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        consume(sys.argv[2], sys.argv[3], int(sys.argv[4]))
