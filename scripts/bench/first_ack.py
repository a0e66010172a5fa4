#!/usr/bin/env python3
"""Loop a tiny produce (acks=all) against BOOTSTRAP until one record is
acknowledged; print the CLOCK_BOOTTIME second at which the ack arrived.

Started *before* the broker is spawned, so the broker's start-up is measured
from its /proc/PID/stat starttime (also boot-clock based) to this ack.

usage: first_ack.py BOOTSTRAP TOPIC DEADLINE_S
"""
import sys, time
from confluent_kafka import Producer

bootstrap, topic, deadline_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
BOOT = time.CLOCK_BOOTTIME
deadline = time.monotonic() + deadline_s
print("ready", flush=True)
acked = []

def on_delivery(err, msg):
    if err is None:
        acked.append(time.clock_gettime(BOOT))
    else:
        print(f"delivery error: {err}", file=sys.stderr, flush=True)

while time.monotonic() < deadline and not acked:
    # A fresh producer per attempt: a refused connection costs little, and
    # short back-offs keep librdkafka from sleeping through the first moment
    # the broker serves.
    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 0,
        "reconnect.backoff.ms": 5,
        "reconnect.backoff.max.ms": 20,
        "retry.backoff.ms": 5,
        "retry.backoff.max.ms": 20,
        "topic.metadata.refresh.interval.ms": 20,
        "message.timeout.ms": 5000,
        "socket.connection.setup.timeout.ms": 1000,
        "log_level": 0,
        "logger": lambda *a: None,
    })
    try:
        p.produce(topic, b"first", on_delivery=on_delivery)
    except Exception as e:  # noqa: BLE001 (e.g. queue full, unknown topic)
        print(f"produce: {e}", file=sys.stderr, flush=True)
        time.sleep(0.01)
    while not acked and time.monotonic() < deadline:
        if p.flush(0.01) == 0:
            break
    if not acked:
        time.sleep(0.005)

if not acked:
    print("no record acknowledged before the deadline", file=sys.stderr)
    sys.exit(1)
print(f"{acked[0]:.6f}", flush=True)
