#!/usr/bin/env python3
"""DuckDB peer of bench/segments.rs (SPEC §5, §7; issue 4): one snapshot's features recomputed in SQL.

The benchmark writes the CDRs it feeds cdrflow (every CDR before --as-of, as CSV)
and the subscribers; this script loads them into DuckDB tables (timed apart), then
times one batch recomputation of the SPEC §5 features of every subscriber for one
`as_of`, and their writing to features.csv in cdrflow's format, sorted by token:

  cdrs (start < as_of) ─distinct msisdn─▶ callers ─┐
  subscribers ───────────────────────────────────────┴▶ who ─left join─▶ features ─▶ features.csv
  cdrs (as_of − window ≤ start < as_of) ─group by msisdn─▶ usage ──────┘

* events, voice_seconds (voice only), sms_count, data_bytes, spend_cents
  (monthly_fee_cents + charges; fee 0 for an unknown caller), contacts (distinct
  non-empty callee of voice and sms), night_share (UTC hour 22, 23, 0–5),
  weekend_share (UTC Saturday, Sunday), roaming_share, active_days (distinct UTC
  dates); shares 0 when events is 0; age = year(as_of − 1 day) − birth_year.
* Who: every subscriber, plus every caller of a CDR with start < as_of (all the
  CDRs given, not only the window's: a caller stays in the snapshots once seen).
* subscriber_token = the first 32 hex digits of HMAC-SHA256(CDRFLOW_TOKEN_KEY,
  msisdn), in SQL (sha256 twice, as scripts/duckdb_baseline.py).
* The CDRs are taken as unique and valid (the benchmark generates them so): no
  dedup, no validation. Segments are not computed (features.csv only).

--compare FILE joins the result with cdrflow's features.csv on the token and
counts the rows only on one side and the mismatches per column (shares within
1e-12).

Prints the figure, the machine and the command, then one machine-readable line
`RESULT {json}` that bench/segments.rs parses.

Usage:
  CDRFLOW_TOKEN_KEY=k python3 scripts/segments_duckdb.py --cdrs 'DIR/cdrs-*.csv' \
      --subscribers DIR/subscribers.csv --as-of EPOCH --window SECONDS --out OUT \
      [--threads 2] [--compare SNAPSHOT/features.csv]
"""

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

try:
    import duckdb
except ImportError:  # as scripts/duckdb_baseline.py: install it if missing
    subprocess.check_call(
        [sys.executable, "-m", "pip", "install", "--quiet", "duckdb==2.0.0"]
    )
    import duckdb

DAY = 86_400
FEATURES = [
    "events",
    "voice_seconds",
    "sms_count",
    "data_bytes",
    "spend_cents",
    "contacts",
    "night_share",
    "weekend_share",
    "roaming_share",
    "active_days",
    "age",
]
SHARES = {"night_share", "weekend_share", "roaming_share"}


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 2**20:.1f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {mem} RAM, {platform.system()} {platform.release()}; load average {load}"


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def hmac_pads(key):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def load(con, cdrs, subscribers):
    con.execute(
        f"""
        CREATE TABLE cdrs AS SELECT * FROM read_csv({sql_str(cdrs)}, header = true,
            columns = {{'start': 'BIGINT', 'msisdn': 'VARCHAR', 'callee': 'VARCHAR',
                        'type': 'VARCHAR', 'duration_s': 'BIGINT', 'bytes': 'BIGINT',
                        'cell_id': 'VARCHAR', 'charge_cents': 'BIGINT', 'roaming': 'BOOLEAN',
                        'record_id': 'VARCHAR'}});
        CREATE TABLE subscribers AS SELECT * FROM read_csv({sql_str(subscribers)}, header = true,
            columns = {{'msisdn': 'VARCHAR', 'gender': 'VARCHAR', 'birth_year': 'INTEGER',
                        'plan': 'VARCHAR', 'monthly_fee_cents': 'BIGINT'}});
        """
    )
    return con.execute("SELECT (SELECT count(*) FROM cdrs), (SELECT count(*) FROM subscribers)").fetchone()


def features(con, as_of, window, key):
    ipad, opad = hmac_pads(key)
    # The snapshot's date D = as_of − 1 day; age = year(D) − birth_year.
    year = time.gmtime(as_of - DAY).tm_year
    con.execute(
        f"""
        CREATE TEMP TABLE features AS
        WITH w AS (
            SELECT * FROM cdrs WHERE start >= {as_of - window} AND start < {as_of}
        ),
        usage AS (
            SELECT msisdn,
                   count(*) AS events,
                   sum(CASE WHEN type = 'voice' THEN duration_s ELSE 0 END) AS voice_seconds,
                   count_if(type = 'sms') AS sms_count,
                   sum(bytes) AS data_bytes,
                   sum(charge_cents) AS charges,
                   count(DISTINCT CASE WHEN type IN ('voice', 'sms') AND coalesce(callee, '') <> ''
                                       THEN callee END) AS contacts,
                   count_if((start % {DAY}) // 3600 >= 22 OR (start % {DAY}) // 3600 < 6) AS night,
                   -- 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays
                   count_if((start // {DAY} + 3) % 7 >= 5) AS weekend,
                   count_if(roaming) AS roaming,
                   count(DISTINCT start // {DAY}) AS active_days
            FROM w GROUP BY msisdn
        ),
        who AS (
            SELECT msisdn FROM subscribers
            UNION
            SELECT DISTINCT msisdn FROM cdrs WHERE start < {as_of}
        )
        SELECT left(sha256($opad || unhex(sha256($ipad || encode(who.msisdn)))), 32)
                   AS subscriber_token,
               coalesce(u.events, 0) AS events,
               coalesce(u.voice_seconds, 0) AS voice_seconds,
               coalesce(u.sms_count, 0) AS sms_count,
               coalesce(u.data_bytes, 0) AS data_bytes,
               coalesce(s.monthly_fee_cents, 0) + coalesce(u.charges, 0) AS spend_cents,
               coalesce(u.contacts, 0) AS contacts,
               CASE WHEN u.events > 0 THEN u.night / u.events ELSE 0 END AS night_share,
               CASE WHEN u.events > 0 THEN u.weekend / u.events ELSE 0 END AS weekend_share,
               CASE WHEN u.events > 0 THEN u.roaming / u.events ELSE 0 END AS roaming_share,
               coalesce(u.active_days, 0) AS active_days,
               {year} - s.birth_year AS age
        FROM who
        LEFT JOIN usage u ON u.msisdn = who.msisdn
        LEFT JOIN subscribers s ON s.msisdn = who.msisdn
        """,
        {"ipad": ipad, "opad": opad},
    )


def compare(con, ours, theirs):
    cols = ", ".join(
        f"'{c}': '{'DOUBLE' if c in SHARES else 'BIGINT'}'" for c in FEATURES
    )
    con.execute(
        f"""CREATE TEMP TABLE theirs AS SELECT * FROM read_csv({sql_str(theirs)}, header = true,
               columns = {{'subscriber_token': 'VARCHAR', {cols}}})"""
    )
    mismatch = ", ".join(
        (
            f"count(*) FILTER (WHERE a.subscriber_token = b.subscriber_token AND abs(a.{c} - b.{c}) > 1e-12) AS {c}"
            if c in SHARES
            else f"count(*) FILTER (WHERE a.subscriber_token = b.subscriber_token AND a.{c} IS DISTINCT FROM b.{c}) AS {c}"
        )
        for c in FEATURES
    )
    row = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE a.subscriber_token = b.subscriber_token) AS both_sides,
               count(*) FILTER (WHERE b.subscriber_token IS NULL) AS only_duckdb,
               count(*) FILTER (WHERE a.subscriber_token IS NULL) AS only_cdrflow,
               {mismatch}
        FROM {ours} a FULL OUTER JOIN theirs b ON a.subscriber_token = b.subscriber_token
        """
    ).fetchone()
    names = ["rows_both", "only_duckdb", "only_cdrflow"] + [f"mismatch_{c}" for c in FEATURES]
    out = dict(zip(names, row))
    out["equal"] = all(v == 0 for k, v in out.items() if k != "rows_both")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cdrs", required=True, help="CSV file(s) of the CDRs (a glob is fine)")
    ap.add_argument("--subscribers", required=True)
    ap.add_argument("--as-of", type=int, required=True, help="the snapshot's as_of (epoch, a UTC midnight)")
    ap.add_argument("--window", type=int, default=30 * DAY, help="seconds (default 30 days)")
    ap.add_argument("--out", required=True, help="directory for features.csv")
    ap.add_argument("--threads", type=int, default=2, help="SET threads (default 2)")
    ap.add_argument("--compare", help="cdrflow's features.csv of the same as_of")
    args = ap.parse_args()
    key = os.environ.get("CDRFLOW_TOKEN_KEY")
    if not key:
        ap.error("CDRFLOW_TOKEN_KEY is not set")

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"machine: {machine()}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}")
    print(f"duckdb {duckdb.__version__}, threads = {threads}")

    t0, c0 = time.perf_counter(), cpu_seconds()
    n_cdrs, n_subs = load(con, args.cdrs, args.subscribers)
    load_s = time.perf_counter() - t0
    print(f"load: {n_cdrs} CDRs, {n_subs} subscribers into tables in {load_s:.2f} s")

    t0, c0 = time.perf_counter(), cpu_seconds()
    features(con, args.as_of, args.window, key.encode())
    query_s = time.perf_counter() - t0
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "features.csv")
    t1 = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM features ORDER BY subscriber_token) TO {sql_str(path)} (HEADER)"
    )
    write_s = time.perf_counter() - t1
    cpu_s = cpu_seconds() - c0
    rows = con.execute("SELECT count(*) FROM features").fetchone()[0]
    print(
        f"features of as_of {args.as_of} ({time.strftime('%Y-%m-%d', time.gmtime(args.as_of - DAY))}): "
        f"{rows} subscribers, query {query_s:.3f} s + write {write_s:.3f} s "
        f"({cpu_s:.2f} CPU s) -> {path}"
    )
    cmp = None
    if args.compare:
        cmp = compare(con, "features", args.compare)
        print(f"compare with {args.compare}: {json.dumps(cmp)}")
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS (python + duckdb): {rss_kb / 2**20:.2f} GiB")
    result = {
        "cdrs": n_cdrs,
        "subscribers": n_subs,
        "rows": rows,
        "load_s": load_s,
        "query_s": query_s,
        "write_s": write_s,
        "cpu_s": cpu_s,
        "threads": threads,
        "duckdb": duckdb.__version__,
        "peak_rss_kb": rss_kb,
        "features_bytes": os.path.getsize(path),
        "compare": cmp,
        "loadavg": os.getloadavg()[0],
    }
    print("RESULT " + json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
