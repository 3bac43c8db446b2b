#!/usr/bin/env python3
"""Checks cdrflow's market-basket rules (SPEC §4) against mlxtend.

Reads a dataset directory (SPEC §1 layout), builds the baskets and their weather
contexts the way SPEC §4 says, mines them with mlxtend's `apriori` +
`association_rules` for the context `global` (all baskets) and for every weather
condition (its baskets only), and compares the rules with the engine's
`rules.csv` (`context,antecedent,consequent,support,confidence,lift`, antecedent
`p1|p2` sorted bytewise).

Usage
-----
  python3 scripts/mlxtend_compare.py --data DIR --rules OUT/rules.csv \
      [--min-support 0.01] [--min-confidence 0.2] [--max-len 3] \
      [--emit FILE] [--strict-ties]

Exit codes: 0 the rule sets are equal (keys, and support/confidence/lift within
1e-6 relative); 1 they differ; 2 usage or I/O error (a missing file or column).

Baskets (what the engine keeps, simplified)
-------------------------------------------
* CSV as SPEC §1: header row, columns found by name, values trimmed, blank lines
  skipped. A row whose field count differs from the header's is dropped.
* `purchases.csv`: a row is dropped (the engine dead-letters it) when a required
  value (`txn_id, customer_id, store_id, ts, product_id, quantity,
  amount_cents`) is empty, `ts` or `amount_cents` is not an integer (optional
  sign, digits, fits in i64), `quantity` is not a non-negative integer, or
  `product_id` is not in `products.csv` (whose rows need `product_id, name,
  category` and a non-negative integer `price_cents`).
* A basket is the set of distinct `product_id`s of the kept rows sharing a
  `txn_id`. Its store and date come from its row with the smallest
  (`ts`, `store_id`, `customer_id`); the date is the UTC day of `ts`.
* Context: the `condition` of the `weather.csv` row for (region of the store in
  `stores.csv`, date), if any (weather rows need a strict `YYYY-MM-DD` date, a
  lowercase `condition` token and a finite `temp_c`; stores need `name`,
  `region` and a valid `lat`/`lon`). When a key appears twice the first row
  wins (a warning is printed).
* `stores_changes.jsonl` is IGNORED: the static `stores.csv` alone gives the
  store's region. The engine applies the change file (a store that opens or
  closes changes its baskets' context), so compare on a dataset without it
  (tests/mlxtend.rs deletes it before running the engine). A warning is printed
  when it exists.

Mining
------
One-hot bool DataFrame per context, `apriori(df, min_support, use_colnames=True,
max_len)`, then `association_rules(metric="confidence",
min_threshold=min_confidence)` (with `num_itemsets=len(df)` where mlxtend
takes it), keeping rules with exactly one consequent and lift > 1.

Float ties
----------
mlxtend decides every threshold in floating point: support = count/n (exact
for a tie, since the division is correctly rounded), but confidence =
(c_AC/n)/(c_A/n) and lift = confidence/(c_C/n) are quotients of rounded values,
so a rule whose exact confidence equals --min-confidence, or whose exact lift
is 1, can land on either side. SPEC §4 asks for exact ratios of counts. Every
difference in the rule keys is therefore checked against the exact counts of
the baskets: a difference where the exact value sits exactly on a threshold and
the engine follows the exact rule is a "tie" — listed, but not a failure
unless --strict-ties. Thresholds are taken as the exact decimal given
(0.01 = 1/100).
"""

import argparse
import csv
import inspect
import math
import os
import re
import sys
import time
import warnings
from collections import defaultdict
from fractions import Fraction

I64_MAX = 2**63 - 1
INT_RE = re.compile(r"[+-]?[0-9]+\Z")
FLOAT_RE = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\Z",
    re.IGNORECASE,
)
TOKEN_RE = re.compile(r"[a-z0-9_-]+\Z")
DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
REL_TOL = 1e-6


class UsageError(Exception):
    """A missing file or column, or an unreadable file: exit code 2."""


def warn(msg):
    print(f"mlxtend_compare: warning: {msg}", file=sys.stderr)


# --- field checks (mirror src/source/csv_table.rs `field::*`) -------------------


def as_int(v):
    if not INT_RE.match(v):
        return None
    x = int(v)
    return x if -I64_MAX - 1 <= x <= I64_MAX else None


def as_count(v):
    x = as_int(v)
    return x if x is not None and x >= 0 else None


def as_float(v):
    if not FLOAT_RE.match(v):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def days_from_civil(y, m, d):
    """Day number since 1970-01-01 (proleptic Gregorian), H. Hinnant's algorithm."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_day(v):
    """Day number of a strict YYYY-MM-DD, or None."""
    m = DATE_RE.match(v)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    if not 1 <= mo <= 12:
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    dim = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    if not 1 <= d <= dim:
        return None
    return days_from_civil(y, mo, d)


def read_table(path, columns):
    """Yields, per data row with the header's field count, the trimmed values of
    `columns` (a tuple). Raises UsageError for a missing file or column."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: missing file")
    try:
        f = open(path, newline="", encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise UsageError(f"{path}: {e}") from e
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise UsageError(f"{path}: empty file: no header row")
        names = [h.strip().lstrip("\ufeff") for h in header]
        idx = []
        for c in columns:
            if c not in names:
                raise UsageError(f"{path}: missing column {c} (header: {','.join(names)})")
            idx.append(names.index(c))
        try:
            for row in reader:
                if not row or row == [""]:
                    continue  # blank line
                if len(row) != len(names):
                    continue  # malformed_csv
                values = tuple(row[i].strip() for i in idx)
                if any("\udc80" <= ch <= "\udcff" for v in values for ch in v):
                    continue  # invalid UTF-8: malformed_csv
                yield values
        except csv.Error as e:
            warn(f"{path}: {e} (rest of the file skipped)")


# --- baskets --------------------------------------------------------------------


def load_baskets(data):
    """Returns (baskets, stats): baskets = list of (frozenset of product_ids,
    context or None), in txn_id order."""
    products = set()
    for pid, name, cat, price in read_table(
        os.path.join(data, "products.csv"), ("product_id", "name", "category", "price_cents")
    ):
        if pid and name and cat and as_count(price) is not None:
            products.add(pid)

    region_of = {}
    for sid, name, lat, lon, region in read_table(
        os.path.join(data, "stores.csv"), ("store_id", "name", "lat", "lon", "region")
    ):
        la, lo = as_float(lat), as_float(lon)
        if not (sid and name and region) or la is None or lo is None:
            continue
        if not (-90 <= la <= 90 and -180 <= lo <= 180):
            continue
        if sid in region_of:
            if region_of[sid] != region:
                warn(f"stores.csv: store {sid} listed twice with different regions; first kept")
            continue
        region_of[sid] = region

    condition_of = {}
    dup_weather = 0
    for region, date, cond, temp in read_table(
        os.path.join(data, "weather.csv"), ("region", "date", "condition", "temp_c")
    ):
        day = parse_day(date)
        if not region or day is None or not TOKEN_RE.match(cond) or as_float(temp) is None:
            continue
        key = (region, day)
        if key in condition_of:
            dup_weather += condition_of[key] != cond
            continue
        condition_of[key] = cond
    if dup_weather:
        warn(f"weather.csv: {dup_weather} (region, date) keys repeated with another condition; first kept")

    if os.path.exists(os.path.join(data, "stores_changes.jsonl")):
        warn("stores_changes.jsonl is ignored (the engine applies it): delete it for an exact comparison")

    items = defaultdict(set)
    first = {}  # txn_id -> smallest (ts, store_id, customer_id)
    rows = dropped = 0
    for txn, cust, store, ts, pid, qty, amount in read_table(
        os.path.join(data, "purchases.csv"),
        ("txn_id", "customer_id", "store_id", "ts", "product_id", "quantity", "amount_cents"),
    ):
        rows += 1
        t = as_int(ts)
        if (
            not (txn and cust and store and pid and qty and amount)
            or t is None
            or pid not in products
            or as_count(qty) is None
            or as_int(amount) is None
        ):
            dropped += 1
            continue
        items[txn].add(pid)
        key = (t, store, cust)
        if txn not in first or key < first[txn]:
            first[txn] = key

    baskets = []
    for txn in sorted(items, key=lambda s: s.encode("utf-8", "surrogateescape")):
        ts, store, _ = first[txn]
        region = region_of.get(store)
        ctx = condition_of.get((region, ts // 86400)) if region is not None else None
        baskets.append((frozenset(items[txn]), ctx))
    stats = {"rows": rows, "dropped": dropped, "baskets": len(baskets)}
    return baskets, stats


def contexts_of(baskets):
    """context name -> list of baskets (sets): `global` first, then conditions sorted."""
    out = {"global": [b for b, _ in baskets]}
    for cond in sorted({c for _, c in baskets if c is not None}):
        out[cond] = [b for b, c in baskets if c == cond]
    return out


# --- mining ---------------------------------------------------------------------


def mine(sets, min_support, min_confidence, max_len):
    """mlxtend apriori + association_rules on one context.
    Returns (number of frequent itemsets, {(antecedent frozenset, consequent): (s, c, l)})."""
    import numpy as np
    import pandas as pd
    from mlxtend.frequent_patterns import apriori, association_rules

    if not sets:
        return 0, {}
    cols = sorted({p for s in sets for p in s}, key=lambda s: s.encode("utf-8", "surrogateescape"))
    pos = {p: i for i, p in enumerate(cols)}
    onehot = np.zeros((len(sets), len(cols)), dtype=bool)
    for r, s in enumerate(sets):
        for p in s:
            onehot[r, pos[p]] = True
    df = pd.DataFrame(onehot, columns=cols)
    freq = apriori(df, min_support=min_support, use_colnames=True, max_len=max_len)
    if freq.empty or freq["itemsets"].map(len).max() < 2:
        return len(freq), {}
    kwargs = {"metric": "confidence", "min_threshold": min_confidence}
    if "num_itemsets" in inspect.signature(association_rules).parameters:
        kwargs["num_itemsets"] = len(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # divide-by-zero in conviction etc.
        with np.errstate(all="ignore"):
            rules = association_rules(freq, **kwargs)
    out = {}
    for a, c, s, conf, lift in zip(
        rules["antecedents"], rules["consequents"], rules["support"], rules["confidence"], rules["lift"]
    ):
        if len(c) == 1 and lift > 1:
            (cons,) = tuple(c)
            out[(frozenset(a), cons)] = (float(s), float(conf), float(lift))
    return len(freq), out


def exact_verdict(sets, ante, cons, ms, mc):
    """(kept by the exact rule, tie): SPEC §4 with exact ratios of counts; `tie`
    when a value sits exactly on its threshold."""
    n = len(sets)
    c_a = sum(1 for s in sets if ante <= s)
    c_c = sum(1 for s in sets if cons in s)
    c_ac = sum(1 for s in sets if cons in s and ante <= s)
    if n == 0 or c_a == 0 or c_c == 0:
        return False, False
    sup = Fraction(c_ac, n)
    conf = Fraction(c_ac, c_a)
    lift = conf / Fraction(c_c, n)
    # Every subset of a frequent set is frequent, so A and {c} are too.
    keep = sup >= ms and conf >= mc and lift > 1
    tie = sup == ms or conf == mc or lift == 1
    return keep, tie


# --- engine rules ---------------------------------------------------------------


def bytewise(s):
    return s.encode("utf-8", "surrogateescape")


def antecedent_text(a):
    return "|".join(sorted(a, key=bytewise))


def read_engine_rules(path):
    """{(context, antecedent frozenset, consequent): (s, c, l)} and a list of problems."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: missing file")
    out, problems = {}, []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        want = ["context", "antecedent", "consequent", "support", "confidence", "lift"]
        if header is None or [h.strip() for h in header] != want:
            raise UsageError(f"{path}: header is {header}, want {','.join(want)}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(want):
                problems.append(f"{path}:{line}: {len(row)} fields")
                continue
            ctx, ante, cons = row[0], row[1], row[2]
            parts = ante.split("|")
            if parts != sorted(parts, key=bytewise) or len(set(parts)) != len(parts) or "" in parts:
                problems.append(f"{path}:{line}: antecedent {ante!r} not distinct and sorted bytewise")
            try:
                vals = tuple(float(v) for v in row[3:6])
            except ValueError:
                problems.append(f"{path}:{line}: a value is not a number: {row[3:6]}")
                continue
            key = (ctx, frozenset(parts), cons)
            if key in out:
                problems.append(f"{path}:{line}: rule {ctx},{ante},{cons} listed twice")
            out[key] = vals
    return out, problems


def write_rules(path, rules):
    rows = sorted(
        ((ctx, antecedent_text(a), c, v) for (ctx, a, c), v in rules.items()),
        key=lambda r: (bytewise(r[0]), bytewise(r[1]), bytewise(r[2])),
    )
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["context", "antecedent", "consequent", "support", "confidence", "lift"])
        for ctx, a, c, (s, conf, lift) in rows:
            w.writerow([ctx, a, c, repr(s), repr(conf), repr(lift)])


def close(x, y):
    return math.isclose(x, y, rel_tol=REL_TOL, abs_tol=0.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset directory (SPEC §1)")
    ap.add_argument("--rules", help="the engine's rules.csv (omit with --emit to only mine)")
    ap.add_argument("--min-support", default="0.01")
    ap.add_argument("--min-confidence", default="0.2")
    ap.add_argument("--max-len", type=int, default=3)
    ap.add_argument("--emit", help="also write mlxtend's rules here (rules.csv format, sorted)")
    ap.add_argument("--strict-ties", action="store_true", help="count float-threshold ties as differences")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if not args.rules and not args.emit:
        print("mlxtend_compare: give --rules FILE (and/or --emit FILE)", file=sys.stderr)
        return 2
    try:
        ms_exact, mc_exact = Fraction(args.min_support), Fraction(args.min_confidence)
    except ValueError:
        print("mlxtend_compare: --min-support/--min-confidence must be decimal numbers", file=sys.stderr)
        return 2
    if args.max_len < 1:
        print("mlxtend_compare: --max-len must be >= 1", file=sys.stderr)
        return 2
    try:
        import mlxtend  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as e:
        print(f"mlxtend_compare: {e} (run scripts/setup-python.sh)", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    try:
        baskets, stats = load_baskets(args.data)
        engine, problems = read_engine_rules(args.rules) if args.rules else (None, [])
    except (UsageError, OSError) as e:
        print(f"mlxtend_compare: {e}", file=sys.stderr)
        return 2
    ctxs = contexts_of(baskets)
    print(
        f"baskets: {stats['baskets']} from {stats['rows']} purchase rows "
        f"({stats['dropped']} rows dropped as dead letters)"
    )

    ours = {}
    for ctx, sets in ctxs.items():
        n_sets, rules = mine(sets, float(args.min_support), float(args.min_confidence), args.max_len)
        print(f"  {ctx}: {len(sets)} baskets, {n_sets} frequent itemsets, {len(rules)} rules")
        for (a, c), v in rules.items():
            ours[(ctx, a, c)] = v
    n_ctx = len({k[0] for k in ours})
    if args.emit:
        write_rules(args.emit, ours)
        print(f"wrote {len(ours)} mlxtend rules to {args.emit}")
    if engine is None:
        return 0

    diffs, ties = list(problems), []
    for key in sorted(set(ours) | set(engine), key=lambda k: (k[0], antecedent_text(k[1]), k[2])):
        ctx, a, c = key
        label = f"{ctx},{antecedent_text(a)},{c}"
        if key in ours and key in engine:
            names = ("support", "confidence", "lift")
            bad = [
                f"{n} mlxtend {x!r} engine {y!r}" for n, x, y in zip(names, ours[key], engine[key]) if not close(x, y)
            ]
            if bad:
                diffs.append(f"{label}: " + "; ".join(bad))
            continue
        where = "only in mlxtend" if key in ours else "only in engine"
        keep, tie = exact_verdict(ctxs.get(ctx, []), a, c, ms_exact, mc_exact)
        if tie and keep == (key in engine) and not args.strict_ties:
            ties.append(f"{label}: {where} (float tie on a threshold; exact ratios say {'keep' if keep else 'drop'})")
        else:
            diffs.append(f"{label}: {where} (exact ratios say {'keep' if keep else 'drop'}{', a tie' if tie else ''})")

    verdict = "equal" if not diffs else f"{len(diffs)} differences"
    if ties and not diffs:
        verdict = f"equal up to {len(ties)} float-threshold ties"
    print(f"mlxtend: {len(ours)} rules in {n_ctx} contexts, engine: {len(engine)}; {verdict}")
    for d in diffs[:20]:
        print(f"  DIFF {d}")
    if len(diffs) > 20:
        print(f"  … and {len(diffs) - 20} more")
    for t in ties[:20]:
        print(f"  TIE  {t}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
