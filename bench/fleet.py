#!/usr/bin/env python3
"""Runs and measures the fleet for bench/fleet (standard library only).

Starts N `serve` processes behind one barrier (each waits in `read` on a shared pipe; closing the
pipe's write end releases all of them at once), waits until the emulator's decision log shows every
certificate's first and second session, stops them with SIGTERM and prints the table.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time


def say(msg):
    print(f"bench/fleet: {msg}", file=sys.stderr, flush=True)


def parse_ts(text):
    """RFC 3339 UTC with up to nanoseconds -> seconds since the epoch (float)."""
    text = text.rstrip("Z")
    frac = 0.0
    if "." in text:
        text, digits = text.split(".", 1)
        frac = float("0." + digits)
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp() + frac


def read_decisions(path):
    """serial -> [(time, status)] from the emulator's JSON decision lines."""
    by_serial = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("event") != "decision" or not d.get("serial"):
                continue
            # Attempt times: when the emulator accepted the attempt's connection (close to when the
            # client started it); the decision's own `ts` comes after the TLS handshake and the
            # checks, which under a 200-client burst on 2 CPUs can be a second later.
            at = d.get("connection_accepted") or d["ts"]
            by_serial.setdefault(d["serial"], []).append((parse_ts(at), d["status"], parse_ts(d["ts"])))
    for v in by_serial.values():
        v.sort()
    return by_serial


def successes(events):
    """When each granted session was answered (the client holds credentials from then on)."""
    return [d for _, s, d in events if s == 201]


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--agent", required=True)
    p.add_argument("--hosts", required=True)
    p.add_argument("--processes", type=int, required=True)
    p.add_argument("--trust-anchor-arn", required=True)
    p.add_argument("--profile-arn", required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--emulator-log", required=True)
    p.add_argument("--lifetime", type=int, required=True)
    p.add_argument("--rate", type=int, required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--check", action="store_true")
    a = p.parse_args()
    n = a.processes

    read_end, write_end = os.pipe()
    procs = []
    logs = os.path.join(a.workdir, "serve-logs")
    os.makedirs(logs, exist_ok=True)
    for i in range(n):
        argv = [
            "sh", "-c", 'read -r _ || true; exec "$@" </dev/null', "fleet-host",
            a.agent, "serve",
            "--certificate", os.path.join(a.hosts, f"{i}.pem"),
            "--private-key", os.path.join(a.hosts, f"{i}.key"),
            "--trust-anchor-arn", a.trust_anchor_arn,
            "--profile-arn", a.profile_arn,
            "--role-arn", a.role_arn,
            "--endpoint", a.endpoint,
            "--listen", "127.0.0.1:0",
        ]
        out = open(os.path.join(logs, f"{i}.out"), "wb")
        err = open(os.path.join(logs, f"{i}.err"), "wb")
        procs.append(subprocess.Popen(argv, stdin=read_end, stdout=out, stderr=err, close_fds=True))
        out.close()
        err.close()
    os.close(read_end)
    say(f"{n} processes waiting at the barrier; releasing them")
    t0 = time.time()
    os.close(write_end)

    def crashed():
        return [i for i, pr in enumerate(procs) if pr.poll() is not None]

    # Phase 1: every certificate gets its first session.
    deadline = t0 + 300
    while True:
        d = read_decisions(a.emulator_log)
        served = sum(1 for ev in d.values() if successes(ev))
        dead = crashed()
        if served >= n or dead or time.time() > deadline:
            break
        time.sleep(0.5)
    t_all = time.time()
    rss = [rss_kib(pr.pid) for pr in procs]
    if served < n:
        say(f"only {served}/{n} served; exited early: {dead[:10]}")
    else:
        say(f"all {n} served; waiting for their next refreshes (about {a.lifetime * 0.55:.0f} s)")
        # Phase 2: every certificate's second session (the proactive refresh at about half-life).
        deadline = time.time() + a.lifetime * 0.9
        while time.time() < deadline and not crashed():
            d = read_decisions(a.emulator_log)
            if all(len(successes(ev)) >= 2 for ev in d.values()) and len(d) >= n:
                break
            time.sleep(1)

    for pr in procs:
        if pr.poll() is None:
            pr.send_signal(signal.SIGTERM)
    codes = [pr.wait(timeout=30) for pr in procs]
    d = read_decisions(a.emulator_log)

    firsts = [successes(ev)[0] - t0 for ev in d.values() if successes(ev)]
    attempts_before_first = []
    min_gap = float("inf")
    min_gap_decided = float("inf")
    close_pairs = 0
    throttled = 0
    for ev in d.values():
        times = [t for t, _, _ in ev]
        throttled += sum(1 for _, s, _ in ev if s == 429)
        ok = successes(ev)
        if ok:
            attempts_before_first.append(sum(1 for _, _, t in ev if t <= ok[0]))
        for x, y in zip(times, times[1:]):
            min_gap = min(min_gap, y - x)
            if y - x < 2.0:
                close_pairs += 1
        decided = sorted(t for _, _, t in ev)
        for x, y in zip(decided, decided[1:]):
            min_gap_decided = min(min_gap_decided, y - x)
    seconds = [successes(ev)[1] for ev in d.values() if len(successes(ev)) >= 2]
    offsets = [successes(ev)[1] - successes(ev)[0] for ev in d.values() if len(successes(ev)) >= 2]
    other = sum(1 for ev in d.values() for _, s, _ in ev if s not in (201, 429))

    served_all = len(firsts) == n
    time_all = max(firsts) if firsts else float("nan")
    spread = (max(seconds) - min(seconds)) if len(seconds) == n else float("nan")
    spread_frac = spread / a.lifetime
    off_spread = (max(offsets) - min(offsets)) if offsets else float("nan")

    print(f"{n} `serve` processes, one certificate each, released together; emulator: {a.rate} "
          f"CreateSession/s in total (and 10/s per certificate), {a.lifetime} s credentials; "
          f"{os.cpu_count()} CPUs")
    print()
    print("| figure | value |")
    print("|---|---:|")
    print(f"| processes holding credentials | {len(firsts)} / {n} |")
    print(f"| time until every one held credentials | {time_all:.1f} s |")
    print(f"| time to first credentials, p50 / p90 | {percentile(firsts, 50):.1f} s / {percentile(firsts, 90):.1f} s |")
    print(f"| CreateSession attempts until served, median / max per process | "
          f"{percentile(attempts_before_first, 50):.0f} / {max(attempts_before_first, default=0)} |")
    print(f"| throttled attempts (429), whole run | {throttled} |")
    print(f"| other refusals | {other} |")
    print(f"| smallest gap between two attempts of one process (connections accepted) | {min_gap:.2f} s |")
    print(f"| the same, between the emulator's answers | {min_gap_decided:.2f} s |")
    print(f"| pairs of attempts of one process closer than 2 s | {close_pairs} |")
    print(f"| processes with their next (second) session | {len(seconds)} / {n} |")
    print(f"| next refreshes spread (first to last) | {spread:.1f} s = {100 * spread_frac:.0f} % of the lifetime |")
    print(f"| each process's refresh after its first session: min / max | "
          f"{min(offsets, default=float('nan')):.1f} s / {max(offsets, default=float('nan')):.1f} s "
          f"(jitter alone spreads {off_spread:.1f} s = {100 * off_spread / a.lifetime:.0f} %) |")
    print(f"| serve RSS when all were served, median / total | {percentile(rss, 50) / 1024:.1f} MiB / {sum(rss) / 1024:.0f} MiB |")
    print(f"| exit codes after SIGTERM | {sorted(set(codes))} |")
    print()

    goals = [
        ("all served within 60 s", served_all and time_all <= 60),
        ("no process hammering: no two attempts of one process closer than 2 s", served_all and close_pairs == 0),
        ("next refreshes spread over >= 10 % of the lifetime", len(seconds) == n and spread_frac >= 0.10),
        ("every process exited 0 on SIGTERM", all(c == 0 for c in codes)),
    ]
    failed = False
    for text, ok in goals:
        print(f"- {'PASS' if ok else 'FAIL'}: {text}")
        failed |= not ok
    _ = t_all
    return 1 if (failed and a.check) else 0


if __name__ == "__main__":
    sys.exit(main())
