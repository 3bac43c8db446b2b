#!/usr/bin/env bash
# The monitor page in a real browser (issue 7). Run by hand, not in .ci/run:
#
#   scripts/browser-test.sh [--scale tiny|small|medium] [--keep]
#
#  1. installs Debian's chromium when it is missing (apt-get, as root or with
#     sudo) and the Python DevTools client `websocket-client` (pip);
#  2. builds the release binary, generates a dataset (default: small,
#     100 000 CDRs) and keeps its cdrs.jsonl's second half back;
#  3. starts a live run (`run --follow --serve`, 2 workers) on the first
#     half and opens `/` in headless chromium through the DevTools protocol
#     (scripts/browser_check.py): the page must say "live run" and its
#     script must connect to /api/events;
#  4. appends the second half to cdrs.jsonl: without a reload, the page's
#     CDRs read must grow to every line; a screenshot of the live page goes
#     to bench/monitor.png;
#  5. once the run has caught up (metrics.json steady), reads every number
#     the page shows (its `data-metric`/`data-value` tags, from the DOM) and
#     compares them with metrics.json, the promotions breakdowns with
#     promotions.csv, the rules with rules.csv, the segments with the latest
#     segments.csv; and checks that no phone number, subscriber token or
#     customer id of the dataset or the outputs is in `/`, /api/panels,
#     /api/monitor or /metrics;
#  6. ends the run with SIGTERM (exit 0 expected).
# Exit 0 when every check passes; each check prints PASS or FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=small
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--scale tiny|small|medium] [--keep]" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
  echo "browser-test: installing Debian's chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  browser=chromium
fi
python3 -c "import websocket" 2>/dev/null || python3 -m pip install -q 'websocket-client==1.9.2'
echo "browser-test: $($browser --version 2>/dev/null | head -1)"

cargo build --release --quiet
bin="$PWD/target/release/cdrflow"
work="$(mktemp -d /tmp/cdrflow-browser.XXXXXX)"
run_pid=""
chrome_pid=""
cleanup() {
  [ -n "$chrome_pid" ] && kill "$chrome_pid" 2>/dev/null || true
  [ -n "$run_pid" ] && kill -TERM "$run_pid" 2>/dev/null || true
  if [ "$keep" = 1 ]; then echo "browser-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

"$bin" generate --scale "$scale" --out "$work/data" -q
cdrs="$work/data/cdrs.jsonl"
total=$(wc -l < "$cdrs")
half=$((total / 2))
mv "$cdrs" "$work/cdrs.all"
head -n "$half" "$work/cdrs.all" > "$cdrs"
tail -n +"$((half + 1))" "$work/cdrs.all" > "$work/cdrs.rest"
printf 'bearer_token,role\nbrowser-test-crm-token,crm\n' > "$work/roles.csv"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
addr="127.0.0.1:$(free_port)"
"$bin" run --data "$work/data" --out "$work/out" --insecure-dev-key -q -w 2 \
  --follow --serve "$addr" --roles "$work/roles.csv" 2> "$work/run.log" &
run_pid=$!
for _ in $(seq 1 600); do
  grep -q "listening on" "$work/run.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$work/run.log" || { echo "browser-test: the run did not start"; cat "$work/run.log"; exit 1; }

devtools=$(free_port)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --remote-debugging-port="$devtools" --remote-allow-origins='*' \
  --window-size=1400,2800 about:blank 2> "$work/chromium.log" &
chrome_pid=$!

status=0
python3 scripts/browser_check.py --page "http://$addr" --devtools "127.0.0.1:$devtools" \
  --work "$work" --total "$total" --screenshot bench/monitor.png || status=$?

kill -TERM "$run_pid"
if wait "$run_pid"; then
  echo "PASS the run ended on SIGTERM with exit 0"
else
  echo "FAIL the run's exit status on SIGTERM: $?"; status=1
fi
run_pid=""
exit "$status"
