#!/usr/bin/env python3
"""The browser side of scripts/browser-test.sh: drives headless chromium
through the DevTools protocol (websocket-client) and checks the monitor page
of a live `cdrflow run --follow --serve` against the run's files.

Waits are bounded polls of the browser's or the run's state (never a fixed
sleep standing in for an event)."""

import argparse
import base64
import csv
import glob
import html
import json
import os
import re
import sys
import time
import urllib.request

import websocket

failures = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def wait_until(what, pred, timeout=120.0, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise SystemExit(f"FAIL timed out after {timeout:.0f} s waiting for {what}")


class Tab:
    """One page target over the DevTools websocket."""

    def __init__(self, devtools):
        def targets():
            try:
                with urllib.request.urlopen(f"http://{devtools}/json/list", timeout=2) as r:
                    return [t for t in json.load(r) if t.get("type") == "page"]
            except OSError:
                return None

        page = wait_until("chromium's DevTools endpoint", targets, 30)[0]
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def tags(text):
    found = {}
    for m, v in re.findall(r'data-metric="([^"]+)" data-value="([^"]+)"', text):
        found.setdefault(html.unescape(m), set()).add(v)
    return found


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--page", required=True)
    ap.add_argument("--devtools", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--screenshot", required=True)
    a = ap.parse_args()
    out, data = os.path.join(a.work, "out"), os.path.join(a.work, "data")

    tab = Tab(a.devtools)
    tab.call("Page.enable")
    tab.call("Page.navigate", url=a.page + "/")
    dom = lambda: tab.js("document.documentElement.outerHTML") or ""
    wait_until("the page", lambda: "cdrflow monitor" in dom(), 30)
    check("live run" in dom(), "the page says 'live run'")
    connected = wait_until(
        "the page's script to connect to /api/events",
        lambda: "connected" in (tab.js("document.getElementById('connection').textContent") or ""),
        30,
    )
    check(bool(connected), "the page's script connected to /api/events (server-sent events)")
    read_js = "Number((document.querySelector('[data-metric=\"cdrs_read\"]')||{}).dataset.value||-1)"
    first = tab.js(read_js)
    print(f"     CDRs read on the page at first: {first}")

    # The second half arrives; the page must follow without a reload.
    with open(os.path.join(a.work, "cdrs.rest"), "rb") as src, \
            open(os.path.join(data, "cdrs.jsonl"), "ab") as dst:
        dst.write(src.read())
    tab.js("window.__not_reloaded = true")
    wait_until(f"the page to show all {a.total} CDRs read", lambda: tab.js(read_js) == a.total, 300)
    check(tab.js("window.__not_reloaded === true"), f"the page grew from {first} to {a.total} CDRs read without a reload")

    # Caught up: metrics.json (rewritten every flush) stops changing and
    # the page shows the same numbers.
    metrics_path = os.path.join(out, "metrics.json")

    def steady():
        try:
            m1 = open(metrics_path).read()
        except OSError:
            return None
        if json.loads(m1).get("cdrs_read") != a.total:
            return None
        time.sleep(2.5)  # more than two flush intervals (1 s) and monitor periods
        return m1 if open(metrics_path).read() == m1 else None

    metrics = json.loads(wait_until("metrics.json to hold still", steady, 120, 0.5))
    wait_until(
        "the page to show metrics.json's promotions",
        lambda: tags(dom()).get("promotions") == {str(metrics["promotions"])},
        30,
    )
    shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    with open(a.screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    check(os.path.getsize(a.screenshot) > 20000, f"screenshot {a.screenshot} written")

    page = dom()
    with open(os.path.join(a.work, "page.html"), "w") as f:
        f.write(page)
    shown = tags(page)

    def value(key):
        vals = shown.get(key)
        if not vals:
            return None
        if len(vals) > 1:
            check(False, f"{key} shown with two values {vals}")
        return int(float(next(iter(vals))))

    n = 0
    for k, v in metrics.items():
        if isinstance(v, int):
            check(value(k) == v, f"page {k} = metrics.json {v}")
            n += 1
        elif isinstance(v, dict):
            for name, c in v.items():
                if c:
                    check(value(f"{k}/{name}") == c, f"page {k}/{name} = metrics.json {c}")
                    n += 1
    check(n >= 20, f"{n} numbers of metrics.json compared")

    promotions = rows(os.path.join(out, "promotions.csv"))

    def group(prefix):
        # Zero rows are shown when the day before had some (the change column).
        g = {k.split("/", 1)[1]: value(k) for k in shown if k.startswith(prefix + "/")}
        return {k: v for k, v in g.items() if v}

    by_store, by_source = {}, {}
    for r in promotions:
        by_store[r["store_id"]] = by_store.get(r["store_id"], 0) + 1
        s = r["source"] or "none"
        by_source[s] = by_source.get(s, 0) + 1
    check(group("promotions_by_store") == by_store,
          f"promotions per store = promotions.csv ({len(by_store)} stores, {len(promotions)} rows)")
    check(group("promotions_by_source") == by_source, f"promotions per source = promotions.csv {by_source}")
    by_context = {}
    for r in rows(os.path.join(out, "rules.csv")):
        by_context[r["context"]] = by_context.get(r["context"], 0) + 1
    check(group("rules_by_context") == by_context, f"rules per context = rules.csv {by_context}")
    snapshots = sorted(glob.glob(os.path.join(out, "segments", "date=*")))
    if snapshots:
        seg = {}
        for r in rows(os.path.join(snapshots[-1], "segments.csv")):
            seg[r["segment"]] = seg.get(r["segment"], 0) + 1
        check(group("segments") == seg,
              f"subscribers per segment = {os.path.basename(snapshots[-1])}/segments.csv {seg}")
    retracted = sum(1 for l in open(os.path.join(out, "promotions.changes.jsonl")) if '"diff":-1' in l)
    check(value("promotions_retracted") == retracted,
          f"promotions retracted = the {retracted} '-1' lines of promotions.changes.jsonl")
    check(len(group("worker_records")) == 2, "the engine panel has both workers")
    check(len(group("arrangement_records")) >= 5,
          f"the engine panel lists {len(group('arrangement_records'))} arrangements")
    check("<circle" in page and "towers" in page, "the map is drawn")

    # No phone number, token or customer id anywhere the page's data goes.
    secrets = set()
    for r in rows(os.path.join(data, "loyalty.csv")):
        secrets.update([r["customer_id"], r["msisdn"]])
    for r in rows(os.path.join(data, "subscribers.csv")):
        secrets.add(r["msisdn"])
    for r in promotions:
        secrets.update([r["subscriber_token"], r["customer_id"]])
    for s in snapshots[-1:]:
        secrets.update(r["subscriber_token"] for r in rows(os.path.join(s, "segments.csv")))
    secrets.discard("")
    answers = {"/ (DOM)": page}
    for path in ["/api/panels", "/api/monitor", "/metrics"]:
        answers[path] = get(a.page + path)
    for where, text in answers.items():
        words = set(re.findall(r"[+\w-]+", text))
        leaked = sorted(secrets & words)
        check(not leaked, f"{where}: none of {len(secrets)} phone numbers, tokens, customer ids {leaked[:3]}")

    print(f"{len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
