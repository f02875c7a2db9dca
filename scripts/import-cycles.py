#!/usr/bin/env python3
"""Fails when two source files of a Rust crate import each other, directly or through others.

Usage: scripts/import-cycles.py node/src

A file's imports are the modules its `use crate::…`, `use super::…` and `use self::…` trees name, the
paths it writes out (`crate::a::b::f()`), and the paths it reaches through a module it imported
(`use crate::global;` then `global::state::f()`). Test modules (`#[cfg(test)] mod … {`) and comments are
left out. Prints each cycle and exits 1, or prints "no import cycles" and exits 0.
"""
import os
import re
import sys


def module_of(path):
    parts = path[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    return () if parts in (["lib"], ["main"]) else tuple(parts)


def main(root):
    sources = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.relpath(os.path.join(directory, name), root)
                with open(os.path.join(root, path)) as f:
                    sources[module_of(path)] = f.read()

    def absolute(current, segments):
        if segments[0] == "crate":
            return list(segments[1:])
        if segments[0] in ("super", "self"):
            base = list(current)
            while segments and segments[0] == "super":
                base, segments = base[:-1], segments[1:]
            if segments and segments[0] == "self":
                segments = segments[1:]
            return base + list(segments)
        return None

    def module(path):
        for i in range(len(path), 0, -1):
            if tuple(path[:i]) in sources:
                return tuple(path[:i])
        return None

    edges = {}
    for current, text in sources.items():
        text = re.sub(r"#\[cfg\(test\)\]\s*mod \w+ \{.*", "", text, flags=re.S)
        text = re.sub(r"//.*", "", text)
        found, aliases = set(), {}
        uses = r"use\s+((?:crate|super|self)(?:::\w+)*)(?:::\{([^}]*)\})?(?:\s+as\s+(\w+))?\s*;"
        for m in re.finditer(uses, text):
            base = m.group(1).split("::")
            items = [i.strip() for i in m.group(2).split(",")] if m.group(2) else [None]
            for item in filter(lambda i: i != "", items):
                if item is None:
                    path, name = absolute(current, base), m.group(3) or base[-1]
                else:
                    named = [part.strip() for part in item.split(" as ")]
                    segments = named[0].split("::")
                    path = absolute(current, base + ([] if segments == ["self"] else segments))
                    name = named[-1] if segments != ["self"] else base[-1]
                if path is None:
                    continue
                found.add(module(path))
                if tuple(path) in sources:
                    aliases[name] = tuple(path)
        for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
            path = absolute(current, m.group(1).split("::"))
            found.add(module(path) if path else None)
        for name, base in aliases.items():
            for m in re.finditer(r"(?<![\w:])" + name + r"((?:::\w+)+)", text):
                found.add(module(list(base) + m.group(1).split("::")[1:]))
        edges[current] = {m for m in found if m is not None and m != current}

    # Tarjan's strongly connected components.
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    for v in list(edges):
        if v not in index:
            visit(v)
    name = lambda m: "::".join(m) or "crate"
    for component in cycles:
        print("import cycle:", ", ".join(sorted(map(name, component))))
        for a in component:
            for b in sorted(edges[a] & set(component)):
                print(f"    {name(a)} -> {name(b)}")
    if not cycles:
        print("no import cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "node/src"))
