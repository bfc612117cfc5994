#!/usr/bin/env python3
"""Every crate's file-to-file imports, and any cycle among them (exit 1 if there is one).

A file imports another when it names an item of it: `use crate::a::b`, `super::x`, a child
module's path, a `pub use` re-export. Files of one crate that import each other cannot be read,
tested or moved apart, so scripts/test.sh refuses a cycle. `--edges` lists every edge (the
closing notes of issue work quote them).

    scripts/module-cycles.py [--edges] [SRC_DIR...]   (default: every crate of the workspace)
"""
import os, re, sys

def crate_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith('.rs'):
                p = os.path.join(root, n)
                rel = os.path.relpath(p, src)[:-3]
                parts = rel.split(os.sep)
                if parts[-1] in ('mod',):
                    parts = parts[:-1]
                if parts in (['lib'], ['main']):
                    parts = []
                if parts and parts[0] == 'bin':
                    continue
                files[tuple(parts)] = p
    return files

def strip(text):
    text = re.sub(r'//[^\n]*', '', text)
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    # drop #[cfg(test)] mod tests { ... } blocks at end (heuristic: from '#[cfg(test)]' to EOF)
    i = text.find('#[cfg(test)]')
    if i >= 0:
        text = text[:i]
    return text

def expand_use(tree):
    # expand a use tree like a::{b, c::{d}} into paths
    tree = tree.replace(' ', '').replace('\n', '')
    out = []
    def rec(prefix, t):
        depth = 0; parts = []; cur = ''
        for ch in t:
            if ch == '{': depth += 1
            if ch == '}': depth -= 1
            if ch == ',' and depth == 0:
                parts.append(cur); cur = ''
            else:
                cur += ch
        parts.append(cur)
        for p in parts:
            if not p: continue
            m = re.match(r'^(.*?)::\{(.*)\}$', p)
            if m and '{' in p and p.index('{') == len(m.group(1)) + 2:
                rec(prefix + m.group(1).split('::'), m.group(2))
            elif p.startswith('{') and p.endswith('}'):
                rec(prefix, p[1:-1])
            else:
                out.append(prefix + re.sub(r'as\w+$', '', p).split('::'))
    rec([], tree)
    return out

def resolve(mod, path, files):
    # mod: tuple of the current module; path: list of segments
    if not path: return None
    if path[0] == 'crate':
        base = (); rest = path[1:]
    elif path[0] == 'super':
        base = mod; rest = path
        while rest and rest[0] == 'super':
            base = base[:-1]; rest = rest[1:]
    elif path[0] == 'self':
        base = mod; rest = path[1:]
    elif mod + (path[0],) in files:
        base = mod; rest = path
    else:
        return None
    best = None
    cur = base
    if cur in files: best = cur
    for seg in rest:
        cur = cur + (seg,)
        if cur in files: best = cur
        else: break
    return best

def edges(src):
    files = crate_files(src)
    result = set()
    for mod, path in files.items():
        text = strip(open(path).read())
        paths = []
        for m in re.finditer(r'\buse\s+([^;]+);', text):
            paths += expand_use(m.group(1))
        for m in re.finditer(r'\b((?:crate|super|self)(?:::\w+)+)', text):
            paths.append(m.group(1).split('::'))
        for m in re.finditer(r'(?<![:\w])(\w+)((?:::\w+)+)', text):
            if mod + (m.group(1),) in files:
                paths.append([m.group(1)] + m.group(2).split('::')[1:])
        for p in paths:
            target = resolve(mod, p, files)
            if target is not None and target != mod:
                # parent->child through mod declarations only count when an item is used
                result.add(('/'.join(mod) or 'lib', '/'.join(target) or 'lib'))
    return result

def cycles(es):
    graph = {}
    for a, b in es: graph.setdefault(a, set()).add(b)
    index = {}; low = {}; stack = []; on = set(); out = []; n = [0]
    sys.setrecursionlimit(10000)
    def strong(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in list(graph):
        if v not in index: strong(v)
    return out

if __name__ == '__main__':
    verbose = '--edges' in sys.argv
    bad = 0
    dirs = [a for a in sys.argv[1:] if not a.startswith('--')]
    if not dirs:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
        dirs = [os.path.relpath(os.path.join(root, d)) for d in
                ['shared/src', 'tests/src'] + sorted(
                    os.path.join('bins', b, 'src') for b in os.listdir(os.path.join(root, 'bins')))]
    for src in dirs:
        es = edges(src)
        cs = cycles(es)
        print(f'{src}: {len(es)} edges, {len(cs)} cycles')
        if verbose:
            for a, b in sorted(es): print(f'  {a} -> {b}')
        for c in cs:
            print('  cycle: ' + ' <-> '.join(c)); bad += 1
    sys.exit(1 if bad else 0)
