#!/usr/bin/env python3
"""Measurement helper for bench/run (Python 3 standard library only).

Subcommands:
  row      run one command N times (after one unmeasured warm-up run) and append a result line
  skip     append a "skipped: why" line for a row whose prerequisites are missing
  table    print the Markdown table of a results file
  ports    print a free loopback TCP port P such that P+1 is free too (swtpm data + control)
  wait-port HOST PORT  return once something accepts connections there (polls, no fixed sleep)
  count-p11 LOG        print the PKCS#11 call counts of a pkcs11-spy log
  tpm-proxy            count TPM commands between a TCTI and swtpm (see tpm_proxy below)
  connect-proxy        an HTTP CONNECT proxy that sends every tunnel to one loopback port
  callgrind            instructions (valgrind --tool=callgrind) and peak RSS (/usr/bin/time -f %M)
                       of one command, medians of N runs; appends a result line
  compare              print the ours / needroleshere table of a callgrind results file
  agent-table          print bench/agent's cold / warm table and check the issue's goals
  emu-stats URL CA     print the emulator's counters (GET /_emulator/stats) as one JSON line

Each run is started with posix_spawn and reaped with os.wait4, so CPU time (user + sys) is the
child's own, not this script's. Peak RSS comes from a second run of each under /usr/bin/time -f %M:
ru_maxrss of a posix_spawn child includes this script's RSS (see cmd_row). A run that exits non-zero or prints no
credentials fails the row: a failed row shows the error, never a number.
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import statistics
import sys
import threading
import time


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = max(1, -(-len(s) * p // 100))  # ceil(n * p / 100)
    return s[int(rank) - 1]


# A run that spends this much longer waiting than computing hit a delayed-ACK stall (bench/README.md):
# no step of a fetch against the local emulator waits that long otherwise.
STALL_S = 0.035


def spawn_wait(argv, env, stdout_path, stderr_path):
    """Runs argv once; returns (exit status, wall s, cpu s, maxrss KiB)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def check_output(code, stdout_path, stderr_path):
    """None if the run printed credential_process JSON, else why not."""
    with open(stderr_path, errors="replace") as f:
        err = f.read().strip()
    if code != 0:
        last = err.splitlines()[-1] if err else "(no stderr)"
        return f"exit {code}: {last}"
    try:
        with open(stdout_path) as f:
            doc = json.load(f)
        if not doc.get("AccessKeyId") or doc.get("Version") != 1:
            return "stdout is not credential_process JSON"
    except (ValueError, OSError) as e:
        return f"stdout is not JSON: {e}"
    return None


def cmd_row(a):
    env = dict(os.environ)
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    argv = a.argv
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        sys.exit("measure.py row: no command given")
    out = os.path.join(a.workdir, "run.stdout")
    err = os.path.join(a.workdir, "run.stderr")
    result = {"row": a.name, "runs": a.runs, "notes": a.notes or ""}
    walls, cpus, rss = [], [], []
    stalls = 0
    # One unmeasured warm-up: page cache, dynamic loader, the service's first connection.
    for i in range(a.runs + 1):
        code, wall, cpu, _ = spawn_wait(argv, env, out, err)
        why = check_output(code, out, err)
        if why:
            result["error"] = f"run {i} failed: {why}"
            break
        if i == 0:
            continue
        walls.append(wall)
        cpus.append(cpu)
        if wall - cpu >= STALL_S:
            stalls += 1
        # Not the child's ru_maxrss: posix_spawn shares this script's memory until exec, and Linux
        # carries the high-water mark across exec, so it reports Python's RSS when that is larger.
        # /usr/bin/time forks from a small process.
        try:
            rss.append(rss_once(argv, env, a.workdir))
        except (RuntimeError, OSError) as e:
            result["error"] = f"run {i} (peak RSS) failed: {e}"
            break
    else:
        if stalls:
            sep = "; " if result["notes"] else ""
            result["notes"] += f"{sep}{stalls}/{a.runs} runs idle >= {STALL_S * 1e3:.0f} ms (see bench/README.md)"
            clean = [w for w, c in zip(walls, cpus) if w - c < STALL_S]
            if clean:
                result["notes"] += f", wall median of the others {statistics.median(clean) * 1e3:.1f} ms"
        result.update(
            wall_median_ms=statistics.median(walls) * 1e3,
            wall_p90_ms=percentile(walls, 90) * 1e3,
            wall_p95_ms=percentile(walls, 95) * 1e3,
            cpu_median_ms=statistics.median(cpus) * 1e3,
            peak_rss_mib=max(rss) / 1024,
        )
        # Instructions of the whole process (all threads): stable where wall time is not.
        if a.callgrind:
            try:
                instr = [callgrind_once(argv, env, a.workdir) for _ in range(a.callgrind)]
                result.update(instructions=statistics.median(instr), instructions_all=instr)
            except (RuntimeError, OSError) as e:
                result["error"] = f"callgrind run failed: {e}"
    with open(a.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    if "error" in result:
        print(f"bench: {a.name}: {result['error']}", file=sys.stderr)
    else:
        instr = f", {result['instructions'] / 1e6:.2f} M instructions" if "instructions" in result else ""
        print(
            f"bench: {a.name}: wall median {result['wall_median_ms']:.1f} ms, "
            f"p95 {result['wall_p95_ms']:.1f} ms, cpu {result['cpu_median_ms']:.1f} ms, "
            f"rss {result['peak_rss_mib']:.1f} MiB{instr}",
            file=sys.stderr,
        )


def cmd_skip(a):
    with open(a.results, "a") as f:
        f.write(json.dumps({"row": a.name, "skipped": a.reason, "notes": a.notes or ""}) + "\n")
    print(f"bench: {a.name}: skipped: {a.reason}", file=sys.stderr)


def cmd_table(a):
    lines = [
        "| row | runs | wall median ms | wall p95 ms | CPU median ms | peak RSS MiB | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            notes = r.get("notes", "").replace("|", "\\|")
            if "skipped" in r:
                lines.append(f"| {r['row']} | – | – | – | – | – | skipped: {r['skipped']} |")
            elif "error" in r:
                msg = r["error"].replace("|", "\\|")
                lines.append(f"| {r['row']} | {r['runs']} | – | – | – | – | FAILED: {msg} |")
            else:
                lines.append(
                    f"| {r['row']} | {r['runs']} | {r['wall_median_ms']:.1f} | {r['wall_p95_ms']:.1f} "
                    f"| {r['cpu_median_ms']:.1f} | {r['peak_rss_mib']:.1f} | {notes} |"
                )
    print("\n".join(lines))


def cmd_ports(_a):
    while True:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        finally:
            a.close()
            b.close()
        print(port)
        return


def cmd_wait_port(a):
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((a.host, a.port), timeout=1).close()
            return
        except OSError:
            # Poll the port; the wait is the connect attempt's own turnaround, kept short.
            select.select([], [], [], 0.01)
    sys.exit(f"measure.py: nothing listening on {a.host}:{a.port} after {a.timeout} s")


P11_CALLS = ("C_Initialize", "C_OpenSession", "C_Login", "C_FindObjectsInit", "C_Sign")


def cmd_count_p11(a):
    # pkcs11-spy logs each call as "N: C_Name" followed by its arguments.
    counts = dict.fromkeys(P11_CALLS, 0)
    with open(a.log, errors="replace") as f:
        for line in f:
            m = re.match(r"^\d+: (C_\w+)", line)
            if m and m.group(1) in counts:
                counts[m.group(1)] += 1
    print(", ".join(f"{k} {v}" for k, v in counts.items()))


def tpm_proxy(a):
    """Forwards TCP ports L, L+1 to swtpm's P, P+1 and counts TPM commands on the data port.

    A TPM command is a 10-byte header (tag u16, commandSize u32, commandCode u32) and a body of
    commandSize - 10 bytes; the swtpm TCTI sends commands raw on the data port. Prints
    "listening PORT" first, and on SIGTERM/SIGINT writes the command count to --count-out.
    Used for one extra fetch only, never for the timed runs.
    """
    count = [0]
    lock = threading.Lock()

    def pump(src, dst, counting):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if counting:
                    buf += data
                    while len(buf) >= 10:
                        size = int.from_bytes(buf[2:6], "big")
                        if size < 10 or len(buf) < size:
                            break
                        buf = buf[size:]
                        with lock:
                            count[0] += 1
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(listener, target_port, counting):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", target_port))
            threading.Thread(target=pump, args=(c, u, counting), daemon=True).start()
            threading.Thread(target=pump, args=(u, c, False), daemon=True).start()

    while True:
        data = socket.socket()
        data.bind(("127.0.0.1", 0))
        port = data.getsockname()[1]
        ctrl = socket.socket()
        try:
            ctrl.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            data.close()
            ctrl.close()
    data.listen(8)
    ctrl.listen(8)
    threading.Thread(target=serve, args=(data, a.tpm_port, True), daemon=True).start()
    threading.Thread(target=serve, args=(ctrl, a.tpm_port + 1, False), daemon=True).start()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"listening {port}", flush=True)
    while not done.wait(3600):
        pass
    with lock, open(a.count_out, "w") as f:
        f.write(f"{count[0]}\n")


def connect_proxy(a):
    """An HTTP/1.1 CONNECT proxy on 127.0.0.1 that tunnels every CONNECT to 127.0.0.1:--to-port.

    needroleshere has no endpoint option: it always calls https://rolesanywhere.REGION.amazonaws.com.
    Through this proxy (HTTPS_PROXY, which both clients honour) that name reaches the emulator
    without touching /etc/hosts; TLS still runs end to end between client and emulator. Prints
    "listening PORT" first; runs until killed.
    """

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(c):
        head = b""
        while b"\r\n\r\n" not in head:
            data = c.recv(4096)
            if not data or len(head) > 16384:
                c.close()
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        if not head.startswith(b"CONNECT "):
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            c.close()
            return
        u = socket.create_connection(("127.0.0.1", a.to_port))
        u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            u.sendall(rest)
        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        pump(u, c)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    while True:
        c, _ = listener.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def callgrind_once(argv, env, workdir):
    """Instructions executed by argv (all its threads), or raises with the run's error."""
    outfile = os.path.join(workdir, "callgrind.out")
    out = os.path.join(workdir, "cg.stdout")
    err = os.path.join(workdir, "cg.stderr")
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}", "--log-file=/dev/null"]
    code, _, _, _ = spawn_wait(vg + argv, env, out, err)
    why = check_output(code, out, err)
    if why:
        raise RuntimeError(why)
    with open(outfile) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no summary line in the callgrind output")


def rss_once(argv, env, workdir):
    """Peak RSS in KiB, as /usr/bin/time -f %M reports it."""
    out = os.path.join(workdir, "rss.stdout")
    err = os.path.join(workdir, "rss.stderr")
    rss = os.path.join(workdir, "rss.txt")
    code, _, _, _ = spawn_wait(["/usr/bin/time", "-f", "%M", "-o", rss] + argv, env, out, err)
    why = check_output(code, out, err)
    if why:
        raise RuntimeError(why)
    with open(rss) as f:
        return int(f.read().split()[-1])


def cmd_callgrind(a):
    env = dict(os.environ)
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    argv = a.argv[1:] if a.argv and a.argv[0] == "--" else a.argv
    if not argv:
        sys.exit("measure.py callgrind: no command given")
    result = {"row": a.name, "client": a.client, "runs": a.runs, "notes": a.notes or ""}
    try:
        instr = [callgrind_once(argv, env, a.workdir) for _ in range(a.runs)]
        rss = [rss_once(argv, env, a.workdir) for _ in range(a.runs)]
        result.update(instructions=statistics.median(instr), peak_rss_kib=statistics.median(rss),
                      instructions_all=instr)
        print(f"bench: {a.name} / {a.client}: {statistics.median(instr) / 1e6:.1f} M instructions, "
              f"{statistics.median(rss) / 1024:.1f} MiB", file=sys.stderr)
    except (RuntimeError, OSError) as e:
        result["error"] = str(e)
        print(f"bench: {a.name} / {a.client}: {e}", file=sys.stderr)
    with open(a.results, "a") as f:
        f.write(json.dumps(result) + "\n")


def cmd_compare(a):
    rows = {}
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            rows.setdefault(r["row"], {})[r["client"]] = r
    print("| setup | instructions: ours | needroleshere | ours / theirs | peak RSS: ours | needroleshere | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, by in rows.items():
        ours, theirs = by.get("ours", {}), by.get("needroleshere", {})

        def instr(r):
            return f"{r['instructions'] / 1e6:.1f} M" if "instructions" in r else f"error: {r.get('error', 'not run')}"

        def rss(r):
            return f"{r['peak_rss_kib'] / 1024:.1f} MiB" if "peak_rss_kib" in r else "-"

        ratio = "-"
        if "instructions" in ours and "instructions" in theirs:
            ratio = f"{ours['instructions'] / theirs['instructions']:.2f}"
        notes = "; ".join(n for n in (ours.get("notes"), theirs.get("notes")) if n)
        print(f"| {name} | {instr(ours)} | {instr(theirs)} | {ratio} | {rss(ours)} | {rss(theirs)} | {notes} |")


# The goals for the warm client (issue 11, Bench).
AGENT_WARM_WALL_MS = 2.0
AGENT_INSTR_RATIO = 20.0


def cmd_agent_table(a):
    """The cold / warm table of bench/agent and one PASS/FAIL line per goal; exit 1 with --check
    when a goal fails (or a row has no figures)."""
    rows = {}
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            rows[r["row"]] = r
    cold, warm = rows.get(a.cold, {}), rows.get(a.warm, {})
    cols = [
        ("wall_median_ms", "{:.2f}", 1),
        ("wall_p90_ms", "{:.2f}", 1),
        ("cpu_median_ms", "{:.2f}", 1),
        ("instructions", "{:.2f}", 1e6),
        ("peak_rss_mib", "{:.1f}", 1),
    ]
    lines = [
        "| mode | runs | wall median ms | wall p90 ms | CPU median ms | instructions (M) | peak RSS MiB | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in ((a.cold, cold), (a.warm, warm)):
        if "error" in r or not r:
            msg = r.get("error", "not run").replace("|", "\\|")
            lines.append(f"| {name} | {r.get('runs', '–')} | – | – | – | – | – | FAILED: {msg} |")
            continue
        cells = [fmt.format(r[k] / scale) if k in r else "–" for k, fmt, scale in cols]
        notes = r.get("notes", "").replace("|", "\\|")
        lines.append(f"| {name} | {r['runs']} | " + " | ".join(cells) + f" | {notes} |")
    ratios = []
    for k, _, _ in cols:
        if k in cold and k in warm and warm[k]:
            ratios.append(f"{cold[k] / warm[k]:.1f}×")
        else:
            ratios.append("–")
    lines.append("| cold / warm | | " + " | ".join(ratios) + " | |")
    print("\n".join(lines))
    print()
    failed = False

    def goal(text, ok):
        nonlocal failed
        failed |= not ok
        print(f"- {'PASS' if ok else 'FAIL'}: {text}")

    if "wall_median_ms" in warm:
        goal(f"warm wall median {warm['wall_median_ms']:.2f} ms <= {AGENT_WARM_WALL_MS:g} ms",
             warm["wall_median_ms"] <= AGENT_WARM_WALL_MS)
    else:
        goal("warm wall median: not measured", False)
    if "instructions" in cold and "instructions" in warm:
        ratio = cold["instructions"] / warm["instructions"]
        goal(f"cold / warm instructions {ratio:.1f}× >= {AGENT_INSTR_RATIO:g}×", ratio >= AGENT_INSTR_RATIO)
    else:
        goal("cold / warm instructions: not measured", False)
    if failed and a.check:
        sys.exit(1)


def cmd_emu_stats(a):
    """The emulator's counters, fetched over HTTPS trusting its CA alone."""
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=a.ca)
    # No proxy from the caller's environment: the emulator is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    with opener.open(a.url.rstrip("/") + "/_emulator/stats", timeout=10) as resp:
        print(json.dumps(json.load(resp)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("row")
    r.add_argument("--name", required=True)
    r.add_argument("--runs", type=int, required=True)
    r.add_argument("--results", required=True)
    r.add_argument("--workdir", required=True)
    r.add_argument("--notes")
    r.add_argument("--env", action="append", metavar="K=V")
    r.add_argument("--callgrind", type=int, default=0, metavar="N",
                   help="also the median instruction count of N runs under callgrind")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    r.set_defaults(func=cmd_row)

    s = sub.add_parser("skip")
    s.add_argument("--name", required=True)
    s.add_argument("--results", required=True)
    s.add_argument("--reason", required=True)
    s.add_argument("--notes")
    s.set_defaults(func=cmd_skip)

    t = sub.add_parser("table")
    t.add_argument("results")
    t.set_defaults(func=cmd_table)

    sub.add_parser("ports").set_defaults(func=cmd_ports)

    w = sub.add_parser("wait-port")
    w.add_argument("host")
    w.add_argument("port", type=int)
    w.add_argument("--timeout", type=float, default=30)
    w.set_defaults(func=cmd_wait_port)

    c = sub.add_parser("count-p11")
    c.add_argument("log")
    c.set_defaults(func=cmd_count_p11)

    x = sub.add_parser("tpm-proxy")
    x.add_argument("--tpm-port", type=int, required=True)
    x.add_argument("--count-out", required=True)
    x.set_defaults(func=tpm_proxy)

    cp = sub.add_parser("connect-proxy")
    cp.add_argument("--to-port", type=int, required=True)
    cp.set_defaults(func=connect_proxy)

    g = sub.add_parser("callgrind")
    g.add_argument("--name", required=True)
    g.add_argument("--client", required=True, choices=["ours", "needroleshere"])
    g.add_argument("--runs", type=int, required=True)
    g.add_argument("--results", required=True)
    g.add_argument("--workdir", required=True)
    g.add_argument("--notes")
    g.add_argument("--env", action="append", metavar="K=V")
    g.add_argument("argv", nargs=argparse.REMAINDER)
    g.set_defaults(func=cmd_callgrind)

    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("results")
    cmp_.set_defaults(func=cmd_compare)

    at = sub.add_parser("agent-table")
    at.add_argument("results")
    at.add_argument("--cold", required=True, help="the cold row's name")
    at.add_argument("--warm", required=True, help="the warm row's name")
    at.add_argument("--check", action="store_true", help="exit 1 when a goal fails")
    at.set_defaults(func=cmd_agent_table)

    es = sub.add_parser("emu-stats")
    es.add_argument("url")
    es.add_argument("ca")
    es.set_defaults(func=cmd_emu_stats)

    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
