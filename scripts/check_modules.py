#!/usr/bin/env python3
"""Module shape of every crate under crates/*/src: no import cycles, no overlong files.

1. Dependencies between modules go one way. For each crate, the modules are its top-level
   modules (`src/x.rs`, `src/x/mod.rs`) and the submodules of directory modules (`src/x/y.rs`,
   `src/x/y/mod.rs`); a file deeper down counts as part of its submodule. Every `crate::<module>`
   path in a module's files (a `use` or a path in code, including `use crate::{a, b::c}`
   groups; comments and string literals are ignored) is an edge to that module. Two modules
   that reach each other are a cycle, and fail the check.
2. No `.rs` file under crates/*/src is longer than 600 lines, unless one of its first 30 lines
   says why: `Longer than 600 lines because ...`.

Usage: python3 scripts/check_modules.py [crate ...]   (default: every crate under crates/)
Exits 1 and lists every offender if any check fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MAX_LINES = 600
REASON = "Longer than 600 lines because"
REASON_WITHIN = 30

ROOT = Path(__file__).resolve().parent.parent
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(src: str) -> str:
    """The source with comments, string and char literals blanked (newlines kept, so that
    line numbers still hold)."""
    out: list[str] = []
    i, n = 0, len(src)

    def blank(text: str) -> str:
        return "".join("\n" if c == "\n" else " " for c in text)

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(src[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', src[i:i + 260])) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(src[i:j]))
            i = j
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'\n])'", src[i:i + 12])):
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            out.append(blank(m.group(0)))
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def use_group_heads(text: str, start: int) -> list[tuple[str, str | None]]:
    """The `(first, second)` path segments named by the `{...}` group opening at `text[start]`
    (`crate::{a::b, c, d::{e, f}}` gives (a, b), (c, None), (d, e), (d, f))."""
    heads: list[tuple[str, str | None]] = []
    depth, i = 0, start
    items: list[str] = []
    cur = []
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
            if depth > 1:
                cur.append(ch)
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append("".join(cur))
                break
            cur.append(ch)
        elif ch == "," and depth == 1:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    for item in items:
        item = " ".join(item.split())
        m = re.match(rf"\s*({IDENT})\s*(?:::\s*(.*))?$", item, re.S)
        if not m:
            continue
        first, rest = m.group(1), (m.group(2) or "").strip()
        if rest.startswith("{"):
            for second, _ in use_group_heads(rest, 0):
                heads.append((first, second))
        else:
            m2 = re.match(rf"({IDENT})", rest)
            heads.append((first, m2.group(1) if m2 else None))
    return heads


def crate_modules(src_dir: Path) -> tuple[dict[Path, str], dict[str, set[str]]]:
    """Each file's module node, and each directory module's submodules."""
    subs: dict[str, set[str]] = {}
    node_of: dict[Path, str] = {}
    for f in sorted(src_dir.rglob("*.rs")):
        parts = f.relative_to(src_dir).with_suffix("").parts
        if len(parts) == 1:
            if parts[0] in ("lib", "main"):
                node_of[f] = "crate"  # the root: no module can be named after it
            else:
                node_of[f] = parts[0]
            continue
        top = parts[0]
        if parts[0] == "bin":
            node_of[f] = "crate"
            continue
        if len(parts) == 2 and parts[1] == "mod":
            node_of[f] = top
            continue
        sub = parts[1]
        subs.setdefault(top, set()).add(sub)
        node_of[f] = f"{top}::{sub}"
    return node_of, subs


def module_edges(src_dir: Path):
    """{(from, to): [file:line, ...]} of `crate::` references between distinct modules."""
    node_of, subs = crate_modules(src_dir)
    modules = {n for n in node_of.values() if n != "crate" and "::" not in n} | set(subs)
    edges: dict[tuple[str, str], list[str]] = {}
    for f, node in node_of.items():
        if node == "crate":
            continue
        text = strip_comments_and_strings(f.read_text(encoding="utf-8"))
        for m in re.finditer(r"(?<![A-Za-z0-9_$])crate\s*::\s*", text):
            after = m.end()
            if text.startswith("{", after):
                heads = use_group_heads(text, after)
            else:
                m2 = re.match(rf"({IDENT})(?:\s*::\s*({IDENT}))?", text[after:])
                heads = [(m2.group(1), m2.group(2))] if m2 else []
            for first, second in heads:
                if first not in modules:
                    continue  # an item of the crate root
                target = f"{first}::{second}" if second in subs.get(first, ()) else first
                if target == node:
                    continue
                line = text.count("\n", 0, m.start()) + 1
                edges.setdefault((node, target), []).append(
                    f"{f.relative_to(ROOT)}:{line}"
                )
    return edges


def cycles(nodes: set[str], edges) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    adj: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj[v]):
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

    sys.setrecursionlimit(10000)
    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def long_files(src_dir: Path) -> list[str]:
    found = []
    for f in sorted(src_dir.rglob("*.rs")):
        lines = f.read_text(encoding="utf-8").splitlines()
        if len(lines) <= MAX_LINES:
            continue
        if any(REASON in line for line in lines[:REASON_WITHIN]):
            continue
        found.append(f"{f.relative_to(ROOT)}: {len(lines)} lines")
    return found


def main(argv: list[str]) -> int:
    crates_dir = ROOT / "crates"
    names = argv or sorted(p.name for p in crates_dir.iterdir() if (p / "src").is_dir())
    problems: list[str] = []
    for name in names:
        src_dir = crates_dir / name / "src"
        if not src_dir.is_dir():
            problems.append(f"crates/{name}: no src directory")
            continue
        edges = module_edges(src_dir)
        nodes = {n for e in edges for n in e}
        for comp in cycles(nodes, edges):
            members = set(comp)
            lines = [f"crates/{name}: modules import each other: {', '.join(comp)}"]
            for (a, b), where in sorted(edges.items()):
                if a in members and b in members:
                    lines.append(f"    {a} -> {b}  ({', '.join(where[:3])}{', ...' if len(where) > 3 else ''})")
            problems.append("\n".join(lines))
        for f in long_files(src_dir):
            problems.append(
                f"{f} (over {MAX_LINES}; split it, or state why in its first {REASON_WITHIN} "
                f"lines with '{REASON} ...')"
            )
    if problems:
        print("check_modules: FAILED", file=sys.stderr)
        for p in problems:
            print(p, file=sys.stderr)
        print(
            "Make module dependencies go one way (move what both need into the module that "
            "owns it, or a lower module) and keep files under 600 lines.",
            file=sys.stderr,
        )
        return 1
    print(f"check_modules: {len(names)} crates: no module cycles, no file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
