#!/usr/bin/env python3
"""DuckDB baseline for cdrflow's benchmarks (SPEC §7): the SPEC §2–3 pipeline as SQL.

Runs over a dataset directory written by `cdrflow generate` (SPEC §1 layout) and
prints the figure, DuckDB's thread count, the machine and the command, then one
machine-readable line `RESULT {json}` that bench/throughput.rs parses.

Modes
-----
--mode read-dedup   The SPEC §7 reference figure ("DuckDB reads and dedups 5 million
                    lines in ~1.3 s"): `read_json` with explicit columns
                    (`ignore_errors`: malformed lines are skipped, values are cast
                    leniently), msisdn normalised, then dedup by record_id keeping
                    the smallest copy by the SPEC §2 tie-break (ROW_NUMBER over the
                    tuple). Counts the unique records. No validation, no lateness.
--mode pipeline     SPEC §2–3 as faithfully as SQL allows, writing promotions.csv,
                    dead_letter.jsonl and metrics.json to --out:

  raw lines ─read_csv(1 VARCHAR column)+row_number─▶ line numbers (blank = NULL row)
    ─json_valid + strict checks + json_extract(10 paths)─▶ reason (SPEC §2 order)
    ─running max(start) of valid lines over line order─▶ late
    ─ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY tie-break)─▶ unique
    ─loyalty versions as of T─▶ customer ─store versions as of T, haversine ≤ radius,
    nearest (d, store_id)─▶ request ─drive table─▶ drive ≤ max
    ─ROW_NUMBER() OVER (PARTITION BY customer, date ORDER BY start, record_id)─▶ promotions

Choices and deviations (read before comparing figures)
------------------------------------------------------
* Line order. The pipeline reads the raw lines with `read_csv` (one VARCHAR column,
  no quote, no escape, delimiter 0x1F) and numbers them with `row_number() OVER ()`.
  DuckDB keeps file order for a plain scan (`preserve_insertion_order`, the
  default), so the number is the physical line number (blank lines come through as
  NULL and are skipped but counted, as SPEC §1 asks). `--compare` checks the line
  numbers against the Rust dead_letter.jsonl. `read_json` + row_number would skip
  blank and malformed lines, so its numbers are not line numbers (lateness would
  still be right: only the order of valid lines matters).
* Strict JSON. `json_valid` (yyjson) accepts trailing commas and NaN/Infinity;
  those are caught by regular expressions on the raw text, and a repeated key by
  comparing `json_keys` with its distinct list. Only top-level duplicate keys are
  seen, and a string value containing ",}" would be misread as a trailing comma.
  Invalid UTF-8 makes read_csv fail (the generator never writes any). `-0` passes
  as 0 (Rust: bad value).
* Lateness. Watermark = max `start` of the valid lines before this one (a window
  `max(...) FILTER ... OVER (ORDER BY line ROWS UNBOUNDED PRECEDING .. 1 PRECEDING)`)
  minus --lateness. A late line never raises the maximum, so no recursion is needed.
* Dedup. All copies of a record_id are one record (no 24 h horizon: the generator's
  copies are close in time, and a horizon in SQL needs a recursive query).
* Changes. loyalty_changes.jsonl / stores_changes.jsonl become versioned tables
  (valid from `at`, in (at, file order); changes with `at` above the final watermark
  are never applied). A CDR with start s is judged against the versions in force at
  T = min(s + view_retention, final watermark): that is when its promotion becomes
  final in the Rust view (updates at times ≤ s + retention still reach it). The
  Rust daily cap is re-evaluated over time and can differ from this in rare cases
  where a change lands between the freeze times of two CDRs of one customer-day.
* Drive distance. DuckDB has no router. `--drive route` (default) runs Dijkstra in
  Python over roads/ (snap to the nearest node by haversine, ties to the smallest
  node_id; lengths in whole micrometres, as the embedded router) for every
  (tower, store version) pair within the radius, bounded at --max-drive-m, and
  loads the result as a table: that precompute is timed separately and NOT counted
  in the SQL seconds (it favours DuckDB). `--drive haversine13` approximates
  drive = haversine × 1.3 instead (said so in the output). The drive cache (SPEC
  §3.4) only saves router calls (the router is deterministic; a moved store is a new
  version), so it does not change promotions; router_calls is not computed.
* Product (SPEC §4) is not computed: product_id and source are empty.
* subscriber_token is HMAC-SHA256(CDRFLOW_TOKEN_KEY, msisdn) in SQL (sha256 twice).

Usage
-----
  python3 scripts/duckdb_baseline.py --data DIR --mode read-dedup [--threads 2]
  CDRFLOW_TOKEN_KEY=k python3 scripts/duckdb_baseline.py --data DIR --mode pipeline \
      --out OUT [--threads 2] [--drive route|haversine13] [--compare RUST_OUT]
"""

import argparse
import csv
import heapq
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time

try:
    import duckdb
except ImportError:  # the brief: install it if missing
    subprocess.check_call(
        [sys.executable, "-m", "pip", "install", "--quiet", "duckdb==2.0.0"]
    )
    import duckdb

EARTH_RADIUS_M = 6_371_008.8
FIELDS = [
    "record_id",
    "msisdn",
    "type",
    "start",
    "cell_id",
    "callee",
    "duration_s",
    "bytes",
    "charge_cents",
    "roaming",
]
REQUIRED = FIELDS[:5]
I64_MAX = 9223372036854775807


def parse_duration(s):
    """`--lateness 1h` etc., as the Rust CLI: digits then s/m/h/d; bare = seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if s and s[-1] in units:
        return int(s[:-1]) * units[s[-1]]
    return int(s)


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


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


# ---------------------------------------------------------------------------
# SQL building blocks


def macros(con):
    # Phone numbers (SPEC §1): drop ' ', '-', '.', '(', ')'; leading 00 -> '+';
    # valid iff '+' and 8-15 digits.
    con.execute(
        r"""
        CREATE OR REPLACE MACRO phone_pre(s) AS
            regexp_replace(regexp_replace(s, '[ .()-]', '', 'g'), '^00', '+');
        CREATE OR REPLACE MACRO phone_ok(p) AS regexp_full_match(p, '\+[0-9]{8,15}');
        CREATE OR REPLACE MACRO norm_phone(s) AS
            CASE WHEN phone_ok(phone_pre(s)) THEN phone_pre(s) END;
        -- SPEC §3.2 haversine, written like dataflows/src/spatial.rs
        CREATE OR REPLACE MACRO haversine_m(lat1, lon1, lat2, lon2) AS
            2.0 * 6371008.8 * asin(least(1.0, sqrt(
                pow(sin(((lat2 - lat1) * (pi() / 180.0)) / 2.0), 2)
              + cos(lat1 * (pi() / 180.0)) * cos(lat2 * (pi() / 180.0))
              * pow(sin(((lon2 - lon1) * (pi() / 180.0)) / 2.0), 2))));
        -- an unsigned integer token <= i64::MAX (json_type UBIGINT: no sign, fraction, exponent)
        CREATE OR REPLACE MACRO uint_ok(j) AS
            json_type(j) = 'UBIGINT' AND coalesce(try_cast(j AS UBIGINT) <= 9223372036854775807::UBIGINT, false);
        CREATE OR REPLACE MACRO present(j) AS j IS NOT NULL AND json_type(j) <> 'NULL';
        CREATE OR REPLACE MACRO jstr(j) AS CASE WHEN json_type(j) = 'VARCHAR' THEN j ->> '$' END;
        """
    )


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def read_dedup(con, data):
    path = os.path.join(data, "cdrs.jsonl")
    q = f"""
    SELECT count(*) AS unique_records, (SELECT count(*) FROM v) AS rows_read FROM (
        SELECT ROW_NUMBER() OVER (
            PARTITION BY record_id
            ORDER BY start_e, msisdn_n, coalesce(callee_n, ''), type, duration_s, bytes,
                     cell_id, charge_cents, roaming) AS rn
        FROM v
    ) WHERE rn = 1
    """
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW v AS
        SELECT record_id,
               norm_phone(msisdn) AS msisdn_n,
               norm_phone(callee) AS callee_n,
               type,
               coalesce(try_cast(start AS BIGINT),
                        epoch(try_cast(start AS TIMESTAMPTZ))::BIGINT) AS start_e,
               coalesce(duration_s, 0) AS duration_s, coalesce(bytes, 0) AS bytes,
               cell_id, coalesce(charge_cents, 0) AS charge_cents,
               coalesce(roaming, false) AS roaming
        FROM read_json({sql_str(path)}, format = 'newline_delimited', ignore_errors = true,
            columns = {{record_id: 'VARCHAR', msisdn: 'VARCHAR', callee: 'VARCHAR',
                       type: 'VARCHAR', start: 'VARCHAR', duration_s: 'BIGINT',
                       bytes: 'BIGINT', cell_id: 'VARCHAR', charge_cents: 'BIGINT',
                       roaming: 'BOOLEAN'}})
        """
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    unique, rows = con.execute(q).fetchone()
    secs = time.perf_counter() - t0
    return {"rows": rows, "unique": unique, "seconds": secs, "cpu_seconds": cpu_seconds() - c0}


def ingest(con, data, lateness, timings):
    """Raw lines -> parsed + reason -> late -> unique. Tables: parsed, unique_cdrs."""
    path = os.path.join(data, "cdrs.jsonl")
    if not os.path.exists(path):
        sys.exit(f"duckdb_baseline: {path} not found (cdrs.jsonl.gz is not supported here)")
    rfc3339 = (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(\.0+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
    )
    paths = "[" + ", ".join(f"'$.{f}'" for f in FIELDS) + "]"
    miss = "\n".join(
        f"WHEN NOT present(v[{i + 1}]) THEN 'missing_field:{f}'"
        for i, f in enumerate(REQUIRED)
    )
    bad_checks = {
        "record_id": "coalesce(jstr(v[1]) <> '', false)",
        "msisdn": "msisdn_n IS NOT NULL",
        "type": "coalesce(jstr(v[3]) IN ('voice', 'sms', 'data'), false)",
        "start": "start_e IS NOT NULL",
        "cell_id": "coalesce(jstr(v[5]) <> '', false)",
        "callee": "(NOT present(v[6]) OR callee_n IS NOT NULL)",
        "duration_s": "(NOT present(v[7]) OR uint_ok(v[7]))",
        "bytes": "(NOT present(v[8]) OR uint_ok(v[8]))",
        "charge_cents": "(NOT present(v[9]) OR uint_ok(v[9]))",
        "roaming": "(NOT present(v[10]) OR json_type(v[10]) = 'BOOLEAN')",
    }
    bad = "\n".join(f"WHEN NOT {bad_checks[f]} THEN 'bad_value:{f}'" for f in FIELDS)

    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE parsed AS
        WITH lines AS (
            SELECT row_number() OVER () AS line, raw
            FROM read_csv({sql_str(path)}, columns = {{'raw': 'VARCHAR'}}, header = false,
                          delim = '\x1f', quote = '', escape = '', auto_detect = false,
                          strict_mode = false)
        ),
        j AS (
            SELECT line, raw,
                   json_valid(raw)
                   AND starts_with(ltrim(raw), '{{')
                   AND NOT regexp_matches(raw, ',\\s*[}}\\]]')
                   AND NOT regexp_matches(raw, '[:,\\[]\\s*-?(NaN|Infinity|inf)\\s*[,}}\\]]')
                   AS json_ok
            FROM lines
            WHERE raw IS NOT NULL AND trim(raw, ' \t\r') <> ''
        ),
        k AS (
            SELECT line, raw,
                   CASE WHEN json_ok THEN len(json_keys(raw)) = len(list_distinct(json_keys(raw))) ELSE false END AS json_ok,
                   CASE WHEN json_ok THEN json_extract(raw, {paths}) END AS v
            FROM j
        ),
        f AS (
            SELECT line, raw, json_ok, v,
                   norm_phone(jstr(v[2])) AS msisdn_n,
                   norm_phone(jstr(v[6])) AS callee_n,
                   CASE
                     WHEN uint_ok(v[4]) THEN v[4]::UBIGINT::BIGINT
                     WHEN regexp_full_match(jstr(v[4]), '{rfc3339}') THEN (
                        epoch(try_cast(replace(upper(substr(jstr(v[4]), 1, 19)), 'T', ' ') AS TIMESTAMP))::BIGINT
                        - CASE WHEN upper(right(jstr(v[4]), 1)) = 'Z' THEN 0
                               ELSE (CASE WHEN substr(right(jstr(v[4]), 6), 1, 1) = '-' THEN -1 ELSE 1 END)
                                    * (substr(right(jstr(v[4]), 5), 1, 2)::BIGINT * 3600
                                       + substr(right(jstr(v[4]), 2), 1, 2)::BIGINT * 60)
                          END)
                   END AS start_raw
            FROM k
        )
        SELECT line, raw,
               CASE WHEN NOT json_ok THEN 'malformed_json'
                    {miss}
                    {bad}
               END AS reason,
               jstr(v[1]) AS record_id, msisdn_n AS msisdn, coalesce(callee_n, '') AS callee,
               jstr(v[3]) AS type, start_e AS start, jstr(v[5]) AS cell_id,
               coalesce(try_cast(try_cast(v[7] AS UBIGINT) AS BIGINT), 0) AS duration_s,
               coalesce(try_cast(try_cast(v[8] AS UBIGINT) AS BIGINT), 0) AS bytes,
               coalesce(try_cast(try_cast(v[9] AS UBIGINT) AS BIGINT), 0) AS charge_cents,
               coalesce(try_cast(v[10] AS BOOLEAN), false) AS roaming
        FROM (SELECT *, CASE WHEN start_raw >= 0 THEN start_raw END AS start_e FROM f)
        """
    )
    timings["read_parse_validate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE classified AS
        SELECT line, raw, record_id, msisdn, callee, type, start, cell_id, duration_s, bytes,
               charge_cents, roaming,
               CASE WHEN reason IS NULL AND start < max_before - {lateness} THEN 'late'
                    ELSE reason END AS reason
        FROM (
            SELECT *, max(start) FILTER (WHERE reason IS NULL) OVER (
                ORDER BY line ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_before
            FROM parsed
        )
        """
    )
    con.execute("DROP TABLE parsed")
    timings["lateness"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE unique_cdrs AS
        SELECT record_id, msisdn, callee, type, start, cell_id, duration_s, bytes,
               charge_cents, roaming
        FROM (
            SELECT *, ROW_NUMBER() OVER (
                PARTITION BY record_id
                ORDER BY start, msisdn, callee, type, duration_s, bytes, cell_id,
                         charge_cents, roaming) AS rn
            FROM classified WHERE reason IS NULL
        ) WHERE rn = 1
        """
    )
    timings["dedup"] = time.perf_counter() - t0


def load_tables(con, data, w_final):
    """towers, store_versions, loyalty_q (qualifying loyalty versions)."""
    def csv_src(name):
        return (
            f"read_csv({sql_str(os.path.join(data, name))}, header = true, all_varchar = true, "
            "delim = ',', quote = '\"', escape = '\"', auto_detect = true)"
        )

    def changes(name, cols):
        path = os.path.join(data, name)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            sel = ", ".join(f"NULL::VARCHAR AS {c}" for c in cols)
            return f"(SELECT NULL::BIGINT AS ts, NULL::VARCHAR AS op, NULL::BIGINT AS ord, {sel} WHERE false)"
        spec = ", ".join(f"{c}: 'VARCHAR'" for c in cols)
        return (
            f"(SELECT \"at\" AS ts, op, row_number() OVER () AS ord, {', '.join(cols)} FROM read_json({sql_str(path)}, "
            f"format = 'newline_delimited', columns = {{\"at\": 'BIGINT', op: 'VARCHAR', {spec}}}) "
            f"WHERE \"at\" <= {w_final})"
        )

    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE towers AS
        SELECT cell_id, lat::DOUBLE AS lat, lon::DOUBLE AS lon
        FROM {csv_src('towers.csv')}
        WHERE cell_id <> '' AND try_cast(lat AS DOUBLE) IS NOT NULL AND try_cast(lon AS DOUBLE) IS NOT NULL
        """
    )
    store_cols = ["store_id", "lat", "lon", "region"]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE store_versions AS
        WITH ev AS (
            SELECT (-9223372036854775807)::BIGINT AS ts, 0 AS ord, 'upsert' AS op, store_id, lat, lon, region
            FROM {csv_src('stores.csv')}
            UNION ALL
            SELECT ts, ord, op, store_id, lat, lon, region FROM {changes('stores_changes.jsonl', store_cols)}
        ),
        iv AS (
            SELECT *, lead(ts, 1, 9223372036854775807) OVER (PARTITION BY store_id ORDER BY ts, ord) AS until
            FROM ev WHERE store_id <> ''
        )
        SELECT store_id, ts AS vfrom, until AS vto, lat::DOUBLE AS lat, lon::DOUBLE AS lon, region
        FROM iv
        WHERE op = 'upsert' AND ts < until
          AND try_cast(lat AS DOUBLE) IS NOT NULL AND try_cast(lon AS DOUBLE) IS NOT NULL
        """
    )
    loy_cols = ["customer_id", "msisdn", "loyalty_points", "opt_in"]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE loyalty_q AS
        WITH ev AS (
            SELECT (-9223372036854775807)::BIGINT AS ts, 0 AS ord, 'upsert' AS op,
                   customer_id, msisdn, loyalty_points, opt_in
            FROM {csv_src('loyalty.csv')}
            UNION ALL
            SELECT ts, ord, op, customer_id, msisdn, loyalty_points, opt_in
            FROM {changes('loyalty_changes.jsonl', loy_cols)}
        ),
        iv AS (
            SELECT *, lead(ts, 1, 9223372036854775807) OVER (PARTITION BY customer_id ORDER BY ts, ord) AS until
            FROM ev WHERE customer_id <> ''
        )
        SELECT customer_id, norm_phone(msisdn) AS msisdn, ts AS vfrom, until AS vto,
               loyalty_points::BIGINT AS points, opt_in IN ('true', '1') AS opt_in
        FROM iv
        WHERE op = 'upsert' AND ts < until AND norm_phone(msisdn) IS NOT NULL
          AND try_cast(loyalty_points AS BIGINT) IS NOT NULL
        """
    )


def store_pairs(con, radius_m):
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT t.cell_id, t.lat AS t_lat, t.lon AS t_lon, s.store_id, s.vfrom, s.vto,
               s.lat AS s_lat, s.lon AS s_lon, s.region,
               haversine_m(t.lat, t.lon, s.lat, s.lon) AS hav
        FROM towers t, store_versions s
        WHERE haversine_m(t.lat, t.lon, s.lat, s.lon) <= {radius_m}
        """
    )


def load_roads(data):
    ids, at, index = [], [], {}
    with open(os.path.join(data, "roads/nodes.csv"), newline="") as f:
        for row in csv.DictReader(f):
            nid = row["node_id"]
            if not nid or nid in index:
                continue  # duplicate node_id: the first row wins
            try:
                lat, lon = float(row["lat"]), float(row["lon"])
            except (TypeError, ValueError):
                continue
            index[nid] = len(ids)
            ids.append(nid)
            at.append((lat, lon))
    adj = [dict() for _ in ids]
    with open(os.path.join(data, "roads/edges.csv"), newline="") as f:
        for row in csv.DictReader(f):
            a, b = index.get(row["from_node"]), index.get(row["to_node"])
            try:
                length = float(row["length_m"])
            except (TypeError, ValueError):
                continue
            if a is None or b is None or a == b or not (0 <= length <= 1e9):
                continue
            units = math.floor(length * 1e6 + 0.5)  # whole micrometres, as route.rs
            if units < adj[a].get(b, 1 << 62):
                adj[a][b] = units
    return ids, at, adj


def drive_table(con, data, max_drive_m, mode):
    """Fills drive(cell_id, store_id, vfrom, drive_m); returns seconds spent."""
    t0 = time.perf_counter()
    if mode == "haversine13":
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE drive AS
            SELECT cell_id, store_id, vfrom, hav * 1.3 AS drive_m FROM pairs
            """
        )
        return time.perf_counter() - t0
    ids, at, adj = load_roads(data)
    con.execute("CREATE OR REPLACE TEMP TABLE nodes (i INTEGER, node_id VARCHAR, lat DOUBLE, lon DOUBLE)")
    # Bulk insert through a temporary CSV is simplest without pandas/numpy.
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cdrflow-nodes-{os.getpid()}.csv")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        for i, (n, p) in enumerate(zip(ids, at)):
            w.writerow([i, n, repr(p[0]), repr(p[1])])
    con.execute("DELETE FROM nodes")
    con.execute(
        f"INSERT INTO nodes SELECT * FROM read_csv({sql_str(tmp)}, header = false, "
        "columns = {'i': 'INTEGER', 'node_id': 'VARCHAR', 'lat': 'DOUBLE', 'lon': 'DOUBLE'}, "
        "quote = '\"', auto_detect = false)"
    )
    os.unlink(tmp)
    # Snap every pair end to its nearest node (haversine; ties to the smallest node_id).
    snaps = con.execute(
        """
        WITH pts AS (
            SELECT DISTINCT t_lat AS lat, t_lon AS lon FROM pairs
            UNION SELECT DISTINCT s_lat, s_lon FROM pairs
        )
        SELECT p.lat, p.lon, min({'d': haversine_m(p.lat, p.lon, n.lat, n.lon), 'id': n.node_id, 'i': n.i}).i
        FROM pts p, nodes n GROUP BY p.lat, p.lon
        """
    ).fetchall()
    snap = {(la, lo): i for la, lo, i in snaps}
    pairs = con.execute(
        "SELECT cell_id, t_lat, t_lon, store_id, vfrom, s_lat, s_lon FROM pairs"
    ).fetchall()
    by_source = {}
    for cell_id, tla, tlo, store_id, vfrom, sla, slo in pairs:
        src, dst = snap.get((tla, tlo)), snap.get((sla, slo))
        by_source.setdefault(src, []).append((cell_id, store_id, vfrom, dst))
    limit = math.floor(max_drive_m * 1e6 + 0.5)
    rows = []
    for src, wants in by_source.items():
        targets = {d for *_, d in wants if d is not None}
        dist = {}
        if src is not None:
            heap, seen, left = [(0, src)], {}, set(targets)
            while heap and left:
                d, v = heapq.heappop(heap)
                if v in seen:
                    continue
                seen[v] = d
                left.discard(v)
                for u, w in adj[v].items():
                    nd = d + w
                    if nd <= limit and u not in seen:
                        heapq.heappush(heap, (nd, u))
            dist = seen
        for cell_id, store_id, vfrom, dst in wants:
            d = dist.get(dst)
            rows.append((cell_id, store_id, vfrom, None if d is None else d / 1e6))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE drive (cell_id VARCHAR, store_id VARCHAR, vfrom BIGINT, drive_m DOUBLE)"
    )
    if rows:
        con.executemany("INSERT INTO drive VALUES (?, ?, ?, ?)", rows)
    return time.perf_counter() - t0


def hmac_pads(key):
    if len(key) > 64:
        import hashlib

        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def promotions(con, p, w_final, out, key, timings):
    ipad, opad = hmac_pads(key)
    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE promotions AS
        WITH c AS (
            SELECT record_id, msisdn, start, cell_id,
                   least(start + {p['retention']}, {w_final}) AS t
            FROM unique_cdrs
        ),
        customers AS (   -- SPEC §3.1: smallest qualifying customer_id per msisdn, as of t
            SELECT c.record_id, c.msisdn, c.start, c.cell_id, c.t, min(l.customer_id) AS customer_id
            FROM c JOIN loyalty_q l
              ON l.msisdn = c.msisdn AND l.vfrom <= c.t AND c.t < l.vto
            WHERE l.opt_in AND l.points <= {p['max_points']}
            GROUP BY ALL
        ),
        requests AS (    -- SPEC §3.2: nearest store in range (d, store_id), as of t
            SELECT cu.*, min({{'d': pr.hav, 'id': pr.store_id, 'v': pr.vfrom}}) AS near
            FROM customers cu JOIN pairs pr
              ON pr.cell_id = cu.cell_id AND pr.vfrom <= cu.t AND cu.t < pr.vto
            GROUP BY ALL
        ),
        capped AS (      -- SPEC §3.3 drive limit, §3.5 daily cap
            SELECT r.*, d.drive_m,
                   make_timestamp(r.start * 1000000)::DATE AS date,
                   ROW_NUMBER() OVER (
                       PARTITION BY r.customer_id, make_timestamp(r.start * 1000000)::DATE
                       ORDER BY r.start, r.record_id) AS rn
            FROM requests r JOIN drive d
              ON d.cell_id = r.cell_id AND d.store_id = r.near.id AND d.vfrom = r.near.v
            WHERE d.drive_m <= {p['max_drive_m']}
        )
        SELECT date::VARCHAR AS date, customer_id,
               left(sha256($opad || unhex(sha256($ipad || encode(msisdn)))), 32) AS subscriber_token,
               record_id, start, cell_id, near.id AS store_id,
               round(near.d)::BIGINT AS haversine_m, round(drive_m)::BIGINT AS drive_m,
               '' AS product_id, '' AS source
        FROM capped WHERE rn = 1
        """,
        {"ipad": ipad, "opad": opad},
    )
    timings["promotions"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM promotions ORDER BY date, customer_id) TO "
        f"{sql_str(os.path.join(out, 'promotions.csv'))} (FORMAT csv, HEADER true)"
    )
    con.execute(
        f"""COPY (SELECT 'cdrs.jsonl' AS source, line, reason, raw FROM classified
                  WHERE reason IS NOT NULL ORDER BY line)
            TO {sql_str(os.path.join(out, 'dead_letter.jsonl'))} (FORMAT json)"""
    )
    counts = dict(
        zip(
            ["read", "valid", "dead", "late", "unique", "unknown_cell"],
            con.execute(
                """
                SELECT count(*), count(*) FILTER (WHERE reason IS NULL),
                       count(*) FILTER (WHERE reason IS NOT NULL),
                       count(*) FILTER (WHERE reason = 'late'),
                       (SELECT count(*) FROM unique_cdrs),
                       (SELECT count(*) FROM unique_cdrs u ANTI JOIN towers t USING (cell_id))
                FROM classified
                """
            ).fetchone(),
        )
    )
    reasons = dict(
        con.execute(
            "SELECT reason, count(*) FROM classified WHERE reason IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    n_promos = con.execute("SELECT count(*) FROM promotions").fetchone()[0]
    metrics = {
        "cdrs_read": counts["read"],
        "cdrs_valid": counts["valid"],
        "cdrs_dead_lettered": counts["dead"],
        "cdrs_late": counts["late"],
        "cdrs_duplicate": counts["valid"] - counts["unique"],
        "cdrs_unique": counts["unique"],
        "cdrs_unknown_cell": counts["unknown_cell"],
        "dead_letter_reasons": reasons,
        "promotions": n_promos,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
    timings["write_outputs"] = time.perf_counter() - t0
    return metrics


def pipeline(con, args):
    p = {
        "lateness": parse_duration(args.lateness),
        "retention": parse_duration(args.view_retention),
        "max_points": args.max_points,
        "radius_m": args.radius_m,
        "max_drive_m": args.max_drive_m,
    }
    key = os.environ.get("CDRFLOW_TOKEN_KEY")
    if key is None:
        sys.exit("duckdb_baseline: set CDRFLOW_TOKEN_KEY (the HMAC key of subscriber_token)")
    os.makedirs(args.out, exist_ok=True)
    timings = {}
    t_all, c_all = time.perf_counter(), cpu_seconds()
    ingest(con, args.data, p["lateness"], timings)
    w_final = con.execute(
        f"SELECT coalesce(max(start), 0) - {p['lateness']} FROM classified WHERE reason IS NULL"
    ).fetchone()[0]
    t0 = time.perf_counter()
    load_tables(con, args.data, w_final)
    store_pairs(con, p["radius_m"])
    timings["tables_and_pairs"] = time.perf_counter() - t0
    c_drive = cpu_seconds()
    drive_secs = drive_table(con, args.data, p["max_drive_m"], args.drive)
    c_drive = cpu_seconds() - c_drive
    metrics = promotions(con, p, w_final, args.out, key.encode(), timings)
    total = time.perf_counter() - t_all
    sql_secs = total - drive_secs
    cpu = cpu_seconds() - c_all - c_drive
    return {"rows": metrics["cdrs_read"], "seconds": sql_secs, "cpu_seconds": cpu, "drive_precompute_seconds": drive_secs,
            "stages": timings, "metrics": metrics}


# ---------------------------------------------------------------------------
# --compare: how faithful is this to the Rust run?


def compare(ours, rust):
    def rows(path, key):
        with open(path, newline="") as f:
            return {key(r) for r in csv.DictReader(f)}

    cols = ("date", "customer_id", "subscriber_token", "record_id", "start", "cell_id",
            "store_id", "haversine_m", "drive_m")
    a = rows(os.path.join(ours, "promotions.csv"), lambda r: tuple(r[c] for c in cols))
    b = rows(os.path.join(rust, "promotions.csv"), lambda r: tuple(r[c] for c in cols))
    print(f"compare promotions: duckdb {len(a)}, rust {len(b)}, both {len(a & b)}, "
          f"only duckdb {len(a - b)}, only rust {len(b - a)}")
    for r in sorted(a - b)[:5]:
        print("  only duckdb:", ",".join(r))
    for r in sorted(b - a)[:5]:
        print("  only rust:  ", ",".join(r))

    def dead(path):
        with open(path) as f:
            return {(d["line"], d["reason"]) for d in map(json.loads, f)}

    a = dead(os.path.join(ours, "dead_letter.jsonl"))
    b = dead(os.path.join(rust, "dead_letter.jsonl"))
    print(f"compare dead letters (line, reason): duckdb {len(a)}, rust {len(b)}, both {len(a & b)}")
    for r in sorted(a ^ b, key=lambda x: int(x[0]))[:8]:
        print("  differs:", r, "duckdb" if r in a else "rust")
    with open(os.path.join(ours, "metrics.json")) as f:
        ma = json.load(f)
    with open(os.path.join(rust, "metrics.json")) as f:
        mb = json.load(f)
    diffs = {k: (v, mb.get(k)) for k, v in ma.items() if mb.get(k) != v}
    print("compare metrics:", "identical" if not diffs else diffs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset directory (SPEC §1)")
    ap.add_argument("--mode", choices=["read-dedup", "pipeline"], default="pipeline")
    ap.add_argument("--out", help="output directory (pipeline mode)")
    ap.add_argument("--threads", type=int, default=2, help="SET threads (default 2)")
    ap.add_argument("--drive", choices=["route", "haversine13"], default="route")
    ap.add_argument("--lateness", default="1h")
    ap.add_argument("--view-retention", default="7d")
    ap.add_argument("--max-points", type=int, default=9000)
    ap.add_argument("--radius-m", type=float, default=5000.0)
    ap.add_argument("--max-drive-m", type=float, default=8000.0)
    ap.add_argument("--compare", help="a Rust `cdrflow run` output directory to compare with")
    args = ap.parse_args()
    if args.mode == "pipeline" and not args.out:
        ap.error("--out is required with --mode pipeline")

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    macros(con)
    print(f"machine: {machine()}")
    print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable] + sys.argv)}")
    print(f"duckdb {duckdb.__version__}, threads = {threads}")

    if args.mode == "read-dedup":
        r = read_dedup(con, args.data)
        print(f"read-dedup: {r['rows']} lines read (read_json, lenient), {r['unique']} unique "
              f"record_ids in {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} CPU s) = "
              f"{r['rows'] / r['seconds']:,.0f} lines/s")
    else:
        r = pipeline(con, args)
        m = r["metrics"]
        for k, v in r["stages"].items():
            print(f"  stage {k:<20} {v:7.2f} s")
        if args.drive == "route":
            print(f"  drive table: Dijkstra in Python over roads/, {r['drive_precompute_seconds']:.2f} s "
                  "(not counted below)")
        else:
            print("  drive distance APPROXIMATED as haversine x 1.3 (no router in DuckDB)")
        print(f"pipeline: {m['cdrs_read']} CDRs read, {m['cdrs_unique']} unique, {m['promotions']} "
              f"promotions in {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} CPU s) = "
              f"{m['cdrs_read'] / r['seconds']:,.0f} CDRs/s")
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS (python + duckdb): {rss_kb / 2**20:.2f} GiB")
    result = {
        "mode": args.mode,
        "rows": r["rows"],
        "seconds": r["seconds"],
        "rows_per_s": r["rows"] / r["seconds"] if r["seconds"] else None,
        "threads": threads,
        "cpu_seconds": r["cpu_seconds"],
        "duckdb": duckdb.__version__,
        "peak_rss_kb": rss_kb,
        "drive": args.drive if args.mode == "pipeline" else None,
        "drive_precompute_seconds": r.get("drive_precompute_seconds"),
        "promotions": r.get("metrics", {}).get("promotions"),
        "loadavg": os.getloadavg()[0],
    }
    print("RESULT " + json.dumps(result, sort_keys=True))
    if args.compare and args.mode == "pipeline":
        compare(args.out, args.compare)


if __name__ == "__main__":
    main()
