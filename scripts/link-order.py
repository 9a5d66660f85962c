#!/usr/bin/env python3
"""Turns valgrind lackey superblock traces of the agent into a link order: the binary's functions in
the order they first ran, one mangled symbol name a line (lld's --symbol-ordering-file).

usage: link-order.py BINARY TRACE... > build/link-order.txt
       link-order.py --check BINARY ORDER_FILE   (how many of the file's names BINARY defines)

Each TRACE is `valgrind -v -v --tool=lackey --trace-superblocks=yes --log-file=TRACE BINARY ...`;
the functions of later traces that the earlier ones did not run follow in their own first-run order.
Symbols sharing an address (aliases) are all listed; lld places the section once.
"""

import bisect
import os
import re
import subprocess
import sys


def text_symbols(path):
    """(start, end, [names]) of the defined code symbols, sorted by start."""
    out = subprocess.run(["nm", "--defined-only", "--print-size", "--no-demangle", path],
                         check=True, capture_output=True, text=True).stdout
    by_addr = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] not in "tTwW":
            continue
        start, size = int(parts[0], 16), int(parts[1], 16)
        if size == 0:
            continue
        end, names = by_addr.setdefault(start, [start + size, []])
        by_addr[start][0] = max(end, start + size)
        names.append(parts[3])
    return sorted((s, e, n) for s, (e, n) in by_addr.items())


def load_base(trace, binary):
    """Where valgrind mapped the binary: its `-v -v` log names the text's link-time address (svma)
    and where it was mapped (avma) right after "Reading syms from BINARY"."""
    name = os.path.realpath(binary)
    reading = False
    with open(trace) as f:
        for line in f:
            if line.startswith("SB "):
                continue
            if "Reading syms from " in line:
                reading = os.path.realpath(line.split("Reading syms from ", 1)[1].strip()) == name
            elif reading and "svma 0x" in line:
                m = re.search(r"svma 0x([0-9a-f]+), avma 0x([0-9a-f]+)", line)
                if m:
                    return int(m.group(2), 16) - int(m.group(1), 16)
    sys.exit(f"link-order: {trace}: no load address of {binary} (run valgrind with -v -v)")


def superblocks(trace):
    with open(trace) as f:
        for line in f:
            if line.startswith("SB "):
                yield int(line[3:], 16)


def check(binary, order_file):
    """A stale file (other dependency versions or features change the hashes in mangled names)
    links fine but orders little: say how much of it still matches."""
    with open(order_file) as f:
        wanted = {line.strip() for line in f if line.strip()}
    have = {n for _, _, names in text_symbols(binary) for n in names}
    found = len(wanted & have)
    print(f"code order: {found} of {len(wanted)} names of {os.path.basename(order_file)} are in the binary"
          + ("" if found * 10 >= len(wanted) * 9 else " (stale: run scripts/link-order)"))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        check(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().split("\n\n")[1])
    binary, traces = sys.argv[1], sys.argv[2:]
    syms = text_symbols(binary)
    starts = [s for s, _, _ in syms]
    seen, order = set(), []
    for trace in traces:
        base = load_base(trace, binary)
        for sb in superblocks(trace):
            i = bisect.bisect_right(starts, sb - base) - 1
            if i < 0 or sb - base >= syms[i][1] or i in seen:
                continue
            seen.add(i)
            order.append(i)
    for i in order:
        for name in syms[i][2]:
            print(name)
    print(f"link-order: {len(order)} functions, "
          f"{sum(syms[i][1] - syms[i][0] for i in order)} bytes of code", file=sys.stderr)


if __name__ == "__main__":
    main()
