#!/usr/bin/env python3
"""Checks the layering of DESIGN.md over the crate's top-level modules.

Reads every `crate::…` path (and `super::` paths that climb to the crate root) in `src/`,
outside `#[cfg(test)]` modules and files, and builds the graph of top-level module imports. It fails when
an edge points up the layer list, when an edge is on DESIGN.md's never-list, or when any cycle
exists. `--graph` prints every edge with the files that make it.

Usage: scripts/layering.py [--graph]   (run by scripts/test.sh, so CI fails on a violation)
"""
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# DESIGN.md "Layering", top to bottom. A module may import modules of its own layer (as long as
# no cycle forms) or of any layer below; never one above.
LAYERS = [
    ["main", "cli", "server"],          # entry points: the only places that know every part
    ["app"],                            # the builder that owns the pieces
    ["fronts", "api"],                  # adapters: HTTP/gRPC in, gate or service calls, HTTP out
    ["services", "audit", "policies"],  # use cases shared by handlers and the CLI
    ["gate"],                           # the decision: pure steps over a snapshot + two ports
    ["authn", "jwt", "events"],         # credentials, tokens, outbox and mailer
    ["store", "kv", "uploads"],         # Postgres (all SQL), Redis, object storage (files)
    ["domain", "net", "config", "crypto", "cache", "telemetry", "routes"],  # no I/O of their own
]

# DESIGN.md's never-list, checked by name even where the layer order would allow it.
NEVER = [
    ("gate", "store"),
    ("gate", "fronts"),
    ("gate", "api"),
    ("domain", "store"),
    ("domain", "api"),
    ("store", "api"),
    ("fronts", "store"),
]

RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def strip_tests(text):
    """Drops `#[cfg(test)]` items (a `mod … { … }` block or a single item)."""
    out = []
    i = 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = j + len("#[cfg(test)]")
        brace = text.find("{", k)
        semi = text.find(";", k)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth = 0
        m = brace
        while m < len(text):
            if text[m] == "{":
                depth += 1
            elif text[m] == "}":
                depth -= 1
                if depth == 0:
                    break
            m += 1
        i = m + 1
    return "".join(out)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def group_heads(text, start):
    """Top-level names of a `{a::b, c, d::{e}}` group starting at text[start] == '{'."""
    depth = 0
    names = []
    token = ""
    expect = True
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                expect = True
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        if depth == 1:
            if ch == ",":
                expect = True
                token = ""
                continue
            if expect:
                if ch.isalnum() or ch == "_":
                    token += ch
                elif token:
                    names.append(token)
                    expect = False
                    token = ""
    if expect and token:
        names.append(token)
    return names


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    name = parts[0]
    return name[:-3] if name.endswith(".rs") else name, len(parts)


def test_only_files():
    """Files declared as `#[cfg(test)] mod x;`: compiled only for tests."""
    skipped = set()
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            text = open(path, encoding="utf-8").read()
            here = dirpath if f in ("mod.rs", "lib.rs") else os.path.join(dirpath, f[:-3])
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+(\w+)\s*;", text):
                skipped.add(os.path.join(here, m.group(1) + ".rs"))
                skipped.add(os.path.join(here, m.group(1), "mod.rs"))
    return skipped


def edges():
    found = defaultdict(set)
    skipped = test_only_files()
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            if path in skipped:
                continue
            src, depth = module_of(path)
            if src == "lib":
                continue
            text = strip_comments(strip_tests(open(path, encoding="utf-8").read()))
            heads = []
            for m in re.finditer(r"\bcrate::(\{|[A-Za-z_][A-Za-z0-9_]*)", text):
                if m.group(1) == "{":
                    heads += group_heads(text, m.start(1))
                else:
                    heads.append(m.group(1))
            # `super::` from src/x.rs or src/x/mod.rs reaches the crate root; from src/x/y.rs
            # it takes `super::super::`.
            is_root_file = depth == 1 or f == "mod.rs" and depth == 2
            climb = "super::" if is_root_file else "super::super::"
            if depth <= 2:
                for m in re.finditer(r"(?<![:\w])" + re.escape(climb) + r"(\{|[A-Za-z_]\w*)", text):
                    if m.group(1) == "{":
                        heads += group_heads(text, m.start(1))
                    else:
                        heads.append(m.group(1))
            rel = os.path.relpath(path, os.path.join(ROOT, ".."))
            for h in heads:
                if h != src and h in RANK:
                    found[(src, h)].add(rel)
    return found


def cycles(graph_edges):
    graph = defaultdict(set)
    for a, b in graph_edges:
        graph[a].add(b)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    found = edges()
    unknown = sorted({m for e in found for m in e if m not in RANK})
    problems = []
    for (a, b), files in sorted(found.items()):
        if (a, b) in NEVER:
            problems.append(f"never-list edge {a} -> {b}: {', '.join(sorted(files))}")
        elif RANK[b] < RANK[a]:
            problems.append(f"upward edge {a} -> {b}: {', '.join(sorted(files))}")
    for comp in cycles(found):
        problems.append("import cycle among: " + ", ".join(comp))
    for root in os.listdir(ROOT):
        name = root[:-3] if root.endswith(".rs") else root
        if name not in RANK and name != "lib":
            problems.append(f"module {name} is in no layer of scripts/layering.py")
    if "--graph" in sys.argv:
        for i, layer in enumerate(LAYERS):
            for m in layer:
                targets = sorted(b for (a, b) in found if a == m)
                if targets or any(b == m for (_, b) in found):
                    print(f"[{i}] {m:10} -> {', '.join(targets) if targets else '-'}")
    print(f"{len(found)} edges among {len(RANK)} modules, {len(problems)} problems")
    for p in problems:
        print("  " + p)
    return 1 if problems or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
