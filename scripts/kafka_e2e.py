#!/usr/bin/env python3
"""Kafka side of scripts/kafka-e2e.sh: produce CDR lines, read topics back and
compare them with cdrflow's output files, compare two runs' outputs.

Uses confluent-kafka (librdkafka), a client independent of cdrflow's. Mirrors
tests/kafka_outputs.rs and tests/kafka_source.rs. Every wait is bounded.
Each check prints PASS/FAIL lines; the exit status is 1 if any check failed,
2 on a usage or connection error.

  kafka_e2e.py ready   --brokers B [--timeout S]
  kafka_e2e.py produce --brokers B --topic T --file cdrs.jsonl
  kafka_e2e.py count   --brokers B (--topic T | --prefix P)
  kafka_e2e.py stored  --db tansu.db --prefix P
  kafka_e2e.py topics  --brokers B --prefix P --out DIR [--numbered] [--label L]
  kafka_e2e.py same    --file-out DIR --kafka-out DIR --topic T --data DIR [--label L]
"""

import argparse
import calendar
import csv
import json
import os
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

TOPICS = ["promotions", "recommendations", "rules", "segments", "dead_letter", "metrics"]
WAIT = 30.0  # seconds, for one metadata / watermark request or one topic read

failures = 0
resent = {}  # topic -> records the broker sent again (see read_all)


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print(f"{'PASS' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)


def consumer(brokers):
    return Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "cdrflow-e2e",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
    )


def partitions(c, topic):
    """Partition ids of `topic`, [] when the broker does not have it."""
    md = c.list_topics(topic, timeout=WAIT)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return []
    return sorted(t.partitions)


def read_all(brokers, topic):
    """Every message of `topic` as dicts, by partition then offset."""
    c = consumer(brokers)
    try:
        ends = {}
        assign = []
        for p in partitions(c, topic):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=WAIT)
            if high > low:
                ends[p] = high
                assign.append(TopicPartition(topic, p, low))
        if not assign:
            return []
        c.assign(assign)
        got = {p: [] for p in ends}
        left = set(ends)
        deadline = time.monotonic() + WAIT
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{topic}: partitions {sorted(left)} not read to their end within {WAIT:.0f} s "
                    f"(ends {ends}, read {{{', '.join(f'{p}: {len(got[p])}' for p in got)}}})"
                )
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                raise RuntimeError(f"{topic}: {m.error()}")
            p = m.partition()
            if got[p] and m.offset() <= got[p][-1]["offset"]:
                # tansu 0.6 on a compacted partition (offset gaps) answers a
                # Fetch with overlapping batches: it advances its read offset
                # by the record count, not past the last offset, and sends the
                # tail again. librdkafka passes them on; a reader's position
                # never goes back, so they are skipped here and counted.
                resent[topic] = resent.get(topic, 0) + 1
                continue
            headers = dict((k, v) for k, v in (m.headers() or []))
            at = None
            if "cdrflow-time" in headers and "cdrflow-seq" in headers:
                at = (int(headers["cdrflow-time"]), int(headers["cdrflow-seq"]))
            got[p].append(
                {
                    "partition": p,
                    "offset": m.offset(),
                    "key": m.key().decode() if m.key() is not None else None,
                    "value": m.value().decode() if m.value() is not None else None,
                    "at": at,
                }
            )
            if m.offset() + 1 >= ends[p]:
                left.discard(p)
        return [r for p in sorted(got) for r in got[p]]
    finally:
        c.close()


def compact(messages):
    """Last value per key; a tombstone removes the key."""
    table = {}
    for m in messages:
        if m["value"] is None:
            table.pop(m["key"], None)
        else:
            table[m["key"]] = json.loads(m["value"])
    return table


def csv_rows(path, key):
    with open(path, newline="") as f:
        return {key(r): dict(r) for r in csv.DictReader(f)}


def short(v, limit=400):
    t = json.dumps(v)
    return t if len(t) <= limit else t[:limit] + f"… ({len(t)} chars)"


def diff(got, want):
    """The differences between two keyed tables, as messages, sorted by key."""
    out = []
    for k in sorted(want):
        if k not in got:
            out.append(f"missing key {k!r}: file {short(want[k])}")
        elif got[k] != want[k]:
            fields = sorted(f for f in set(got[k]) | set(want[k]) if got[k].get(f) != want[k].get(f)) \
                if isinstance(got[k], dict) and isinstance(want[k], dict) else []
            what = f" (fields {', '.join(fields[:5])})" if fields else ""
            out.append(f"key {k!r}{what}: topic {short(got[k])} vs file {short(want[k])}")
    for k in sorted(set(got) - set(want)):
        out.append(f"extra key {k!r}: topic {short(got[k])}")
    return out


def compare_table(label, name, got, want):
    d = diff(got, want)
    if d:
        report(False, f"{label} {name}", f"{len(d)} differences ({len(got)} keys in topic, "
               f"{len(want)} in file); first: {d[0]}" + "".join(f"\n       {x}" for x in d[1:3]))
    else:
        report(bool(want) or name in ("recommendations",), f"{label} {name}",
               f"{len(want)} keys equal the file" if want else "the file is empty")


def feature_equal(got, text):
    if got is None:
        return text == ""
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    try:
        a = float(text)
    except ValueError:
        return False
    return abs(a - float(got)) <= 1e-12 * max(abs(a), 1.0)


def segments_want(out):
    """The latest snapshot as topic values: token -> (as_of, segments, features text)."""
    dirs = sorted(p for p in (out / "segments").iterdir() if p.name.startswith("date="))
    latest = dirs[-1]
    date = latest.name[len("date="):]
    midnight = calendar.timegm(time.strptime(date, "%Y-%m-%d"))
    as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(midnight + 86400))
    features = csv_rows(latest / "features.csv", lambda r: r["subscriber_token"])
    segments = {}
    with open(latest / "segments.csv", newline="") as f:
        for r in csv.DictReader(f):
            segments.setdefault(r["subscriber_token"], []).append(r["segment"])
    return latest.name, as_of, features, segments


def check_segments(label, got, out):
    snapshot, as_of, features, segments = segments_want(out)
    problems = []
    for k in sorted(set(got) - set(features)):
        problems.append(f"extra key {k!r} (not in {snapshot}/features.csv)")
    for token in sorted(features):
        v = got.get(token)
        if v is None:
            problems.append(f"missing key {token!r}")
            continue
        if v.get("subscriber_token") != token:
            problems.append(f"key {token!r}: subscriber_token {v.get('subscriber_token')!r}")
        if v.get("as_of") != as_of:
            problems.append(f"key {token!r}: as_of {v.get('as_of')!r} vs {as_of!r}")
        want_segments = sorted(segments.get(token, []))
        if v.get("segments") != want_segments:
            problems.append(f"key {token!r}: segments {v.get('segments')} vs file {want_segments}")
        fv = v.get("features") or {}
        for name, text in features[token].items():
            if name == "subscriber_token":
                continue
            if name not in fv or not feature_equal(fv[name], text):
                problems.append(f"key {token!r}: feature {name} topic {fv.get(name)!r} vs file {text!r}")
        extra = set(fv) - set(features[token])
        if extra:
            problems.append(f"key {token!r}: extra features {sorted(extra)}")
    if problems:
        report(False, f"{label} segments", f"{len(problems)} differences with {snapshot} "
               f"({len(got)} keys in topic, {len(features)} in file); first: {problems[0]}")
    else:
        report(bool(features), f"{label} segments", f"{len(features)} keys equal {snapshot} (as_of {as_of})")


def check_numbered(label, topic, messages, full_name):
    """Per partition, in offset order, the (cdrflow-time, cdrflow-seq) headers
    strictly increase: no pair twice (nothing duplicated), none out of order.
    Where the partition is uncompacted (offsets 0, 1, 2, … without gaps) also
    as tests/kafka.rs assert_numbered: seq 0, 1, 2, … within each time, so
    nothing is missing either. tansu compacts `cleanup.policy=compact` topics
    when it starts and every 10 minutes, which leaves offset (and seq) gaps."""
    by_partition = {}
    for m in messages:
        by_partition.setdefault(m["partition"], []).append(m)
    strict = compacted = 0
    for p, ms in sorted(by_partition.items()):
        whole = [m["offset"] for m in ms] == list(range(len(ms)))
        strict += whole
        compacted += not whole
        seen = {}
        prev = None
        for m in ms:
            at = m["at"]
            where = f"partition {p} offset {m['offset']} key {m['key']!r}"
            if at is None:
                return report(False, f"{label} {topic} headers", f"{where}: no cdrflow-time/cdrflow-seq headers")
            if at in seen:
                return report(False, f"{label} {topic} headers",
                              f"{where}: (time, seq) {at} already at offset {seen[at]} (a duplicate)")
            seen[at] = m["offset"]
            if prev is not None and at <= prev:
                return report(False, f"{label} {topic} headers", f"{where}: (time, seq) {at} after {prev}")
            if whole:
                ok = (at[1] == 0) if prev is None else (
                    at[1] == prev[1] + 1 if at[0] == prev[0] else at[1] == 0)
                if not ok:
                    return report(False, f"{label} {topic} headers",
                                  f"{where}: (time, seq) {at} after {prev} (a gap in an uncompacted partition)")
            prev = at
    detail = f"{len(messages)} messages, (time, seq) strictly increasing per partition"
    if strict:
        detail += f"; {strict} uncompacted partition(s) numbered 0, 1, 2, … in every time"
    if compacted:
        detail += f"; {compacted} compacted by tansu"
    if resent.get(full_name):
        detail += f" (tansu sent {resent[full_name]} records twice, skipped)"
    report(True, f"{label} {topic} headers", detail)


def cmd_topics(a):
    out = Path(a.out)
    label = a.label
    read = {}
    for t in TOPICS:
        try:
            read[t] = read_all(a.brokers, f"{a.prefix}.{t}")
        except (KafkaException, RuntimeError) as e:
            report(False, f"{label} {t}", f"reading {a.prefix}.{t}: {e}")
    f = lambda r, *names: "|".join(r[n] for n in names)  # noqa: E731
    if "promotions" in read:
        compare_table(label, "promotions", compact(read["promotions"]),
                      csv_rows(out / "promotions.csv", lambda r: f(r, "customer_id", "date")))
    if "rules" in read:
        compare_table(label, "rules", compact(read["rules"]),
                      csv_rows(out / "rules.csv", lambda r: f(r, "context", "antecedent", "consequent")))
    if "recommendations" in read:
        compare_table(label, "recommendations", compact(read["recommendations"]),
                      csv_rows(out / "recommendations.csv", lambda r: f(r, "customer_id", "context")))
    if "dead_letter" in read:
        want = {}
        for line in (out / "dead_letter.jsonl").read_text().splitlines():
            d = json.loads(line)
            want[f"{d['source']}|{d['line'] if 'line' in d else d['offset']}"] = d
        compare_table(label, "dead_letter", compact(read["dead_letter"]), want)
    if "metrics" in read:
        want = {"metrics": json.loads((out / "metrics.json").read_text())}
        compare_table(label, "metrics", compact(read["metrics"]), want)
    if "segments" in read:
        check_segments(label, compact(read["segments"]), out)
    if a.numbered:
        for t in TOPICS:
            if t in read:
                check_numbered(label, t, read[t], f"{a.prefix}.{t}")


def cmd_same(a):
    """The Kafka-source run's outputs equal the file run's, byte for byte;
    its CDR dead letters are the file run's with partition 0 and offset."""
    file_out, kafka_out, label = Path(a.file_out), Path(a.kafka_out), a.label
    for name in ["promotions.csv", "promotions.changes.jsonl", "rules.csv", "recommendations.csv", "metrics.json"]:
        x, y = (file_out / name).read_bytes(), (kafka_out / name).read_bytes()
        if x == y:
            report(bool(x.strip()), f"{label} {name}", f"{len(x)} bytes identical")
        else:
            xl, yl = x.decode().splitlines(), y.decode().splitlines()
            n = next((i for i, (p, q) in enumerate(zip(xl, yl)) if p != q), min(len(xl), len(yl)))
            report(False, f"{label} {name}", f"differs at line {n + 1} (file run {len(xl)} lines, "
                   f"kafka run {len(yl)}):\n       file:  {xl[n] if n < len(xl) else '<end>'}"
                   f"\n       kafka: {yl[n] if n < len(yl) else '<end>'}")

    def tree(root):
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    ta, tb = tree(file_out / "segments"), tree(kafka_out / "segments")
    if set(ta) != set(tb):
        only = sorted(set(ta) ^ set(tb))
        report(False, f"{label} segments/", f"different files, first: {only[0]} "
               f"({len(ta)} files in the file run, {len(tb)} in the kafka run)")
    else:
        bad = [n for n in ta if ta[n] != tb[n]]
        if bad:
            report(False, f"{label} segments/", f"{len(bad)} files differ, first: {bad[0]}")
        else:
            report(bool(ta), f"{label} segments/", f"{len(ta)} files identical")

    # Dead letters: file lines -> kafka:TOPIC/0 with the line's offset among the non-blank lines.
    lines = (Path(a.data) / "cdrs.jsonl").read_text().split("\n")
    offset_of, o = {}, 0
    for i, l in enumerate(lines):
        if l.strip():
            offset_of[i + 1] = o
            o += 1
    dead = lambda out: [json.loads(l) for l in (out / "dead_letter.jsonl").read_text().splitlines()]  # noqa: E731
    want = []
    for d in dead(file_out):
        if d["source"] == "cdrs.jsonl":
            d = dict(d)
            line = d.pop("line")
            d["source"] = f"kafka:{a.topic}/0"
            d["offset"] = offset_of[line]
            want.append(d)
    want.sort(key=lambda d: d["offset"])
    got = sorted((d for d in dead(kafka_out) if d["source"].startswith("kafka:")), key=lambda d: d["offset"])
    if got == want:
        report(bool(want), f"{label} dead letters", f"{len(want)} CDR dead letters, as partition 0 and offset")
    else:
        n = next((i for i, (p, q) in enumerate(zip(want, got)) if p != q), min(len(want), len(got)))
        report(False, f"{label} dead letters", f"{len(got)} vs {len(want)} expected; first difference: "
               f"kafka {got[n] if n < len(got) else '<none>'} vs expected {want[n] if n < len(want) else '<none>'}")
    others = lambda out: [d for d in dead(out) if not d["source"].startswith(("kafka:", "cdrs.jsonl"))]  # noqa: E731
    report(others(file_out) == others(kafka_out), f"{label} other dead letters",
           f"{len(others(file_out))} table/change-file dead letters identical")


def cmd_produce(a):
    lines = [l for l in Path(a.file).read_text().split("\n") if l.strip()]
    errors = []
    p = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True, "acks": "all",
                  "compression.type": a.compression, "linger.ms": 5})

    def done(err, _msg):
        if err is not None:
            errors.append(err)

    for l in lines:
        while True:
            try:
                p.produce(a.topic, value=l.encode(), partition=a.partition, on_delivery=done)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(WAIT * 2)
    if left or errors:
        print(f"produce: {left} messages unacknowledged, {len(errors)} failed"
              + (f", first: {errors[0]}" if errors else ""), file=sys.stderr)
        sys.exit(2)
    print(f"produced {len(lines)} messages to {a.topic}/{a.partition}", flush=True)


def cmd_count(a):
    """Messages ever written (the sum of the high watermarks) to a topic, or
    to every PREFIX.<output> topic; 0 for a topic the broker lacks."""
    topics = [a.topic] if a.topic else [f"{a.prefix}.{t}" for t in TOPICS]
    c = consumer(a.brokers)
    try:
        n = 0
        for topic in topics:
            try:
                for p in partitions(c, topic):
                    n += c.get_watermark_offsets(TopicPartition(topic, p), timeout=WAIT)[1]
            except KafkaException:
                pass
        print(n)
    finally:
        c.close()


def cmd_stored(a):
    """The same count read from a stopped tansu's sqlite file (its internal
    schema, tansu 0.6: topic, topition, watermark): what the broker had made
    durable when it was killed. Prints '?' if the schema is not as expected."""
    import sqlite3
    try:
        db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
        (n,) = db.execute(
            "select coalesce(sum(w.high), 0) from watermark w join topition tp on tp.id = w.topition "
            "join topic t on t.id = tp.topic where t.name like ? escape '\\'",
            (a.prefix.replace("_", "\\_") + ".%",),
        ).fetchone()
        print(n)
    except sqlite3.Error as e:
        print(f"stored: {e}", file=sys.stderr)
        print("?")


def cmd_ready(a):
    """Waits (bounded) until the broker answers a metadata request."""
    # log_level 0: no "connection refused" lines while the broker starts.
    admin = AdminClient({"bootstrap.servers": a.brokers, "log_level": 0})
    deadline = time.monotonic() + a.timeout
    last = None
    while time.monotonic() < deadline:
        if a.pid and not os.path.exists(f"/proc/{a.pid}"):
            print(f"ready: the broker process {a.pid} exited", file=sys.stderr)
            sys.exit(2)
        try:
            md = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if md.brokers:
                print(f"broker ready: {', '.join(f'{b.host}:{b.port}' for b in md.brokers.values())}", flush=True)
                return
        except KafkaException as e:
            last = e
        time.sleep(0.2)
    print(f"ready: no metadata from {a.brokers} within {a.timeout} s (last error: {last})", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ready")
    s.add_argument("--brokers", required=True)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--pid", type=int, help="give up when this process (the broker) has exited")
    s = sub.add_parser("produce")
    s.add_argument("--brokers", required=True)
    s.add_argument("--topic", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--partition", type=int, default=0)
    s.add_argument("--compression", default="lz4")
    s = sub.add_parser("count")
    s.add_argument("--brokers", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--topic")
    g.add_argument("--prefix")
    s = sub.add_parser("stored")
    s.add_argument("--db", required=True)
    s.add_argument("--prefix", required=True)
    s = sub.add_parser("topics")
    s.add_argument("--brokers", required=True)
    s.add_argument("--prefix", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--label", default="topics")
    s.add_argument("--numbered", action="store_true", help="check the exactly-once headers")
    s = sub.add_parser("same")
    s.add_argument("--file-out", required=True)
    s.add_argument("--kafka-out", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--topic", required=True)
    s.add_argument("--label", default="source")
    a = ap.parse_args()
    {"ready": cmd_ready, "produce": cmd_produce, "count": cmd_count, "stored": cmd_stored,
     "topics": cmd_topics, "same": cmd_same}[a.cmd](a)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
