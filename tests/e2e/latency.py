#!/usr/bin/env python3
"""Why a deterministic e2e step was slow (issue 9): split its latency into the agent's part and
agtmux's part. stdlib only.

usage: latency.py RUN_DIR [--all]

For each step of RUN_DIR/logs/results.json that passed with evidence `deterministic` (and, without
--all, took more than 100 ms), it finds in RUN_DIR/agtmux-state/*/agtmux.db the last accepted
event for the pane between the step's action and the moment agtmux's option showed the expected
value, and prints:
  screen->recv   when agtmux RECEIVED that event, relative to when the screen showed the step
                 (positive = the agent sent its hook / app-server notification after redrawing);
  recv->option   agtmux's own time from receiving it to writing the tmux option (from `hops`);
  option->poll   the rest: until the harness' next poll saw the option (poll period ~20 ms + the
                 tmux round trip on a loaded machine).
"""
import glob
import json
import os
import sqlite3
import sys


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    run = sys.argv[1]
    show_all = "--all" in sys.argv
    rows = json.load(open(os.path.join(run, "logs", "results.json")))
    dbs = glob.glob(os.path.join(run, "agtmux-state", "*", "agtmux.db"))
    if not dbs:
        print("no agtmux.db under %s/agtmux-state" % run)
        return 1
    db = sqlite3.connect("file:%s?mode=ro" % dbs[0], uri=True)
    print("| agent | size | step | lat ms | event (source/name) | screen->recv ms | recv->option ms | option->poll ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        w = r.get("wall") or {}
        if r.get("result") != "PASS" or not r.get("det") or r.get("latency") is None or not w.get("agtmux"):
            continue
        if not show_all and r["latency"] <= 0.1:
            continue
        lo = int((w.get("action") or w["screen"] - 30) * 1000)
        hi = int(w["agtmux"] * 1000) + 5
        ev = db.execute("SELECT source, name, recv_ts, hops FROM events_raw_v2 WHERE pane_id = ? AND status = "
                        "'accepted' AND recv_ts BETWEEN ? AND ? ORDER BY recv_ts DESC LIMIT 1",
                        (r.get("pane"), lo, hi)).fetchone()
        if not ev:
            print("| %s | %s | %s | %+d | (no event: heuristic or restored state) | | | |"
                  % (r["agent"], r["size"], r["step"], round(r["latency"] * 1000)))
            continue
        source, name, recv, hops = ev
        opt = (json.loads(hops or "{}") or {}).get("option") or recv
        print("| %s | %s | %s | %+d | %s/%s | %+d | %d | %d |" % (
            r["agent"], r["size"], r["step"], round(r["latency"] * 1000), source, name,
            recv - round(w["screen"] * 1000), opt - recv, round(w["agtmux"] * 1000) - opt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
