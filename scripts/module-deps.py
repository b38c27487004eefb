#!/usr/bin/env python3
"""Prints the import graph between pixgate's top-level modules (src/<module>/ or src/<module>.rs)
from `crate::<module>` references, and exits 1 when it has a cycle (naming one).

Usage: scripts/module-deps.py [--graph]   (run from anywhere; reads ../src)
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
REF = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
# `use crate::{a, b::c}` groups
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def top_modules():
    mods = {}
    for name in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            mods[name] = path
        elif name.endswith(".rs") and name not in ("lib.rs", "main.rs"):
            mods[name[:-3]] = path
    return mods


def files_of(path):
    if os.path.isfile(path):
        yield path
        return
    for d, _, fs in os.walk(path):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def strip_comments(text):
    return "\n".join(l.split("//")[0] for l in text.splitlines())


def graph(mods):
    g = {m: set() for m in mods}
    for m, path in mods.items():
        for f in files_of(path):
            with open(f, encoding="utf-8") as fh:
                text = strip_comments(fh.read())
            refs = set(REF.findall(text))
            for grp in GROUP.findall(text):
                refs |= {p.strip().split("::")[0] for p in grp.split(",") if p.strip()}
            g[m] |= {r for r in refs if r in mods and r != m}
    return g


def find_cycle(g):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(g[n]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    g = graph(top_modules())
    if "--graph" in sys.argv:
        for m in sorted(g):
            print(f"{m:10} -> {', '.join(sorted(g[m])) or '(nothing)'}")
    cycle = find_cycle(g)
    if cycle:
        print("module cycle: " + " -> ".join(cycle), file=sys.stderr)
        return 1
    print("no cycle between top-level modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
