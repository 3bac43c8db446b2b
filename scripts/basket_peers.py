#!/usr/bin/env python3
"""Benchmark peers for cdrflow's market-basket mining (SPEC §4, §7).

Mines the frequent itemsets (and rules) of the `global` context — all baskets —
with the usual Python tools, so the engine's figure can be printed beside them:

  pyfim-fpgrowth     Borgelt's FP-growth in C (`fim.fpgrowth`, target 's')
  pyfim-rules        the same, rules mode (`fim.fpgrowth`, target 'r', mode 'o' =
                     rule support is the support of body ∪ head, as mlxtend),
                     then lift > 1 kept in Python
  mlxtend-fpgrowth   `mlxtend.frequent_patterns.fpgrowth` on the one-hot table,
                     then `association_rules` (timed apart)
  mlxtend-apriori    `apriori(low_memory=True)` on the one-hot table, then
                     `association_rules` (timed apart)

Every peer runs in its own child process (this script with `--worker`), so its
peak RSS (`resource.getrusage(...).ru_maxrss`) is its own: the baskets, its input
table and its mining. Each child times, separately:

  load   purchases.csv → baskets (pandas `read_csv` of `txn_id,product_id`,
         empty values dropped, distinct (txn, product) pairs, CSR arrays), or the
         synthetic generator
  prep   baskets → the peer's input: the one-hot bool DataFrame (mlxtend), or a
         list of transactions (pyfim)
  mine   frequent itemsets of size 1..max-len with support ≥ min-support
  rules  rules A → c, confidence ≥ min-confidence, lift > 1 (mlxtend peers)

baskets/s = baskets / mine seconds. The baskets are SPEC §4's except that rows
the engine would dead-letter for other columns (a bad `ts`, an unknown
`product_id`, …) are kept: the generator plants none.

Usage
-----
  python3 scripts/basket_peers.py --purchases DATA/purchases.csv \
      [--min-support 0.01] [--max-len 3] [--min-confidence 0.2] \
      [--skip mlxtend-apriori[,…]] [--timeout SEC] [--json]
  python3 scripts/basket_peers.py --synthetic 1000000,50,1000 [--seed 1] …

`--synthetic N,ITEMS,PRODUCTS[,ZIPF]`: N baskets, each ITEMS draws (with
replacement, repeats collapse, so ≤ ITEMS distinct products) from PRODUCTS
products whose popularity follows a Zipf law with exponent ZIPF (default 0.8),
with numpy's PCG64 seeded by --seed. Same arguments, same baskets.

Sizes (2 cores, 24 GiB): on `--synthetic 1000000,50,1000` pyfim takes ~1.5 min and
4 GB, mlxtend's apriori ~6 min and 3.2 GB, and mlxtend's fpgrowth did not finish in
15 min with 14–16 GB resident: pass `--skip mlxtend-fpgrowth` (or `--timeout`) there.

Install the peers with scripts/setup-python.sh. A peer that cannot be imported,
runs past --timeout or dies (e.g. out of memory) is reported as such and the
others still run; the exit code is 1 when a peer failed (not for a timeout or a
skip), 2 for a usage error.
"""

import argparse
import json
import os
import re
import platform
import resource
import subprocess
import sys
import time

PEERS = ["pyfim-fpgrowth", "pyfim-rules", "mlxtend-fpgrowth", "mlxtend-apriori"]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- baskets as CSR: indptr (n+1), indices (sorted within a basket) ----------------


def load_purchases(path):
    import numpy as np
    import pandas as pd

    df = pd.read_csv(
        path,
        usecols=["txn_id", "product_id"],
        dtype=str,
        keep_default_na=False,
        skipinitialspace=True,
    )
    df = df[(df["txn_id"] != "") & (df["product_id"] != "")]
    txn_codes, _ = pd.factorize(df["txn_id"], sort=False)
    item_codes, items = pd.factorize(df["product_id"], sort=True)
    pairs = np.unique(np.stack([txn_codes, item_codes]).T.astype(np.int64), axis=0)
    n = int(txn_codes.max()) + 1 if len(txn_codes) else 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, pairs[:, 0] + 1, 1)
    return np.cumsum(indptr), pairs[:, 1].astype(np.int32), len(items)


def parse_synthetic(spec):
    """N,ITEMS,PRODUCTS[,ZIPF] → (n, k, p, zipf); ValueError if malformed."""
    parts = spec.split(",")
    if len(parts) not in (3, 4):
        raise ValueError("--synthetic wants N,ITEMS,PRODUCTS[,ZIPF]")
    n, k, p = (int(x) for x in parts[:3])
    zipf = float(parts[3]) if len(parts) == 4 else 0.8
    if n < 1 or k < 1 or p < 1:
        raise ValueError("--synthetic: N, ITEMS and PRODUCTS must be positive")
    return n, k, p, zipf


def synthetic(spec, seed):
    import numpy as np

    n, k, p, zipf = parse_synthetic(spec)
    rng = np.random.Generator(np.random.PCG64(seed))
    weights = 1.0 / np.arange(1, p + 1, dtype=np.float64) ** zipf
    cdf = np.cumsum(weights / weights.sum())
    indptr = [np.zeros(1, dtype=np.int64)]
    indices = []
    done, chunk = 0, max(1, 2_000_000 // k)
    while done < n:
        m = min(chunk, n - done)
        draws = np.minimum(np.searchsorted(cdf, rng.random((m, k))), p - 1)
        draws.sort(axis=1)
        keep = np.ones_like(draws, dtype=bool)
        keep[:, 1:] = draws[:, 1:] != draws[:, :-1]
        indices.append(draws[keep].astype(np.int32))
        indptr.append(indptr[-1][-1] + np.cumsum(keep.sum(axis=1)))
        done += m
    return np.concatenate(indptr), np.concatenate(indices), p


def onehot(indptr, indices, n_items):
    import numpy as np
    import pandas as pd

    n = len(indptr) - 1
    table = np.zeros((n, n_items), dtype=bool)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    table[rows, indices] = True
    return pd.DataFrame(table, columns=[f"i{j}" for j in range(n_items)], copy=False)


def transactions(indptr, indices):
    flat = indices.tolist()
    bounds = indptr.tolist()
    return [flat[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


# --- one peer, in this (child) process -------------------------------------------


def mlxtend_rules(freq, n, min_confidence):
    import inspect
    import warnings

    import numpy as np
    from mlxtend.frequent_patterns import association_rules

    if freq.empty or freq["itemsets"].map(len).max() < 2:
        return 0
    kwargs = {"metric": "confidence", "min_threshold": min_confidence}
    if "num_itemsets" in inspect.signature(association_rules).parameters:
        kwargs["num_itemsets"] = n
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rules = association_rules(freq, **kwargs)
    return int(((rules["consequents"].map(len) == 1) & (rules["lift"] > 1)).sum())


def run_peer(peer, args):
    import numpy  # noqa: F401  (imports are not part of any timing)
    import pandas  # noqa: F401

    if peer.startswith("pyfim"):
        import fim
    else:
        from mlxtend.frequent_patterns import apriori, fpgrowth
    out = {"peer": peer}
    t = time.perf_counter()
    if args.synthetic:
        indptr, indices, n_items = synthetic(args.synthetic, args.seed)
    else:
        indptr, indices, n_items = load_purchases(args.purchases)
    out["load_s"] = time.perf_counter() - t
    n = len(indptr) - 1
    out.update(baskets=n, products=n_items, line_items=int(len(indices)))
    out["mean_basket"] = len(indices) / n if n else 0.0

    t = time.perf_counter()
    if peer.startswith("pyfim"):
        data = transactions(indptr, indices)
    else:
        data = onehot(indptr, indices, n_items)
    out["prep_s"] = time.perf_counter() - t
    out["rss_before_mine_mb"] = peak_rss_mb()

    supp_pct = float(args.min_support) * 100.0
    t = time.perf_counter()
    if peer == "pyfim-fpgrowth":
        found = fim.fpgrowth(data, target="s", supp=supp_pct, zmin=1, zmax=args.max_len, report="a")
        out["itemsets"] = len(found)
    elif peer == "pyfim-rules":
        found = fim.fpgrowth(
            data,
            target="r",
            supp=supp_pct,
            conf=float(args.min_confidence) * 100.0,
            zmin=2,
            zmax=args.max_len,
            report="l",
            mode="o",
        )
        out["rules"] = sum(1 for r in found if r[2] > 1.0)
    else:
        algo = fpgrowth if peer == "mlxtend-fpgrowth" else apriori
        extra = {"low_memory": True} if peer == "mlxtend-apriori" else {}
        freq = algo(data, min_support=float(args.min_support), use_colnames=False, max_len=args.max_len, **extra)
        out["itemsets"] = len(freq)
    out["mine_s"] = time.perf_counter() - t
    if peer.startswith("mlxtend"):
        t = time.perf_counter()
        out["rules"] = mlxtend_rules(freq, n, float(args.min_confidence))
        out["rules_s"] = time.perf_counter() - t
    out["baskets_per_s"] = n / out["mine_s"] if out["mine_s"] > 0 else None
    out["peak_rss_mb"] = peak_rss_mb()
    out["status"] = "ok"
    return out


# --- the parent: one child per peer ----------------------------------------------


def child_command(peer, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", peer]
    if args.synthetic:
        cmd += ["--synthetic", args.synthetic, "--seed", str(args.seed)]
    else:
        cmd += ["--purchases", args.purchases]
    cmd += [
        "--min-support",
        args.min_support,
        "--min-confidence",
        args.min_confidence,
        "--max-len",
        str(args.max_len),
    ]
    return cmd


def run_child(peer, args):
    try:
        p = subprocess.run(child_command(peer, args), capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"peer": peer, "status": f"timeout after {args.timeout:g} s"}
    for line in p.stdout.splitlines():
        if line.startswith("PEER "):
            return json.loads(line[5:])
    err = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
    return {"peer": peer, "status": f"failed: {err}"}


def fmt(x, spec):
    if isinstance(x, (int, float)):
        return format(x, spec)
    width = re.match(r"\d*", spec).group()
    return "-".rjust(int(width) if width else 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--purchases", help="a purchases.csv (SPEC §1)")
    src.add_argument("--synthetic", metavar="N,ITEMS,PRODUCTS[,ZIPF]", help="random baskets instead")
    ap.add_argument("--seed", type=int, default=1, help="seed of --synthetic")
    ap.add_argument("--min-support", default="0.01")
    ap.add_argument("--min-confidence", default="0.2")
    ap.add_argument("--max-len", type=int, default=3)
    ap.add_argument("--skip", action="append", default=[], help=f"peers to skip, comma separated: {','.join(PEERS)}")
    ap.add_argument("--timeout", type=float, help="seconds a peer may take (load included)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        float(args.min_support), float(args.min_confidence)
    except ValueError:
        ap.error("--min-support and --min-confidence must be numbers")
    if args.synthetic:
        try:
            parse_synthetic(args.synthetic)
        except ValueError as e:
            ap.error(str(e))

    if args.worker:
        print("PEER " + json.dumps(run_peer(args.worker, args)), flush=True)
        return 0

    skip = {s.strip() for arg in args.skip for s in arg.split(",") if s.strip()}
    unknown = skip - set(PEERS)
    if unknown:
        ap.error(f"--skip: unknown peer(s) {', '.join(sorted(unknown))}; peers: {', '.join(PEERS)}")
    if args.purchases and not os.path.exists(args.purchases):
        print(f"basket_peers: {args.purchases}: no such file", file=sys.stderr)
        return 2

    results = []
    for peer in PEERS:
        if peer in skip:
            results.append({"peer": peer, "status": "skipped"})
            continue
        r = run_child(peer, args)
        results.append(r)
        if not args.json:
            print(f"  … {peer}: {r['status']}", file=sys.stderr)

    first = next((r for r in results if r.get("status") == "ok"), {})
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "source": f"synthetic {args.synthetic} seed {args.seed}" if args.synthetic else args.purchases,
        "baskets": first.get("baskets"),
        "products": first.get("products"),
        "mean_basket": first.get("mean_basket"),
        "min_support": float(args.min_support),
        "min_confidence": float(args.min_confidence),
        "max_len": args.max_len,
        "context": "global",
        "peers": {r["peer"]: r for r in results},
    }
    failed = any(r["status"].startswith("failed") for r in results)
    if args.json:
        print(json.dumps(report))
        return 1 if failed else 0
    print(f"machine: {report['machine']}")
    print(f"command: {report['command']}")
    print(
        f"baskets: {fmt(report['baskets'], 'd')} ({report['source']}), products: {fmt(report['products'], 'd')}, "
        f"mean basket: {fmt(report['mean_basket'], '.2f')} items; min support {args.min_support}, "
        f"max len {args.max_len}, min confidence {args.min_confidence}; context global"
    )
    head = f"{'peer':<17} {'load s':>8} {'prep s':>8} {'mine s':>9} {'itemsets':>9} {'baskets/s':>11} {'rules s':>8} {'rules':>7} {'peak RSS MB':>12}  status"
    print(head)
    for r in results:
        print(
            f"{r['peer']:<17} {fmt(r.get('load_s'), '8.3f')} {fmt(r.get('prep_s'), '8.3f')} "
            f"{fmt(r.get('mine_s'), '9.3f')} {fmt(r.get('itemsets'), '9d')} {fmt(r.get('baskets_per_s'), '11.0f')} "
            f"{fmt(r.get('rules_s'), '8.3f')} {fmt(r.get('rules'), '7d')} {fmt(r.get('peak_rss_mb'), '12.0f')}  {r['status']}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
