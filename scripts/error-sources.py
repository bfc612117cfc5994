#!/usr/bin/env python3
"""No error type prints its own cause (exit 1 if one does).

Each error says only what went wrong at its level and keeps the cause in its source
(`source` field, `#[source]`, `#[from]`); whoever prints an error prints the chain
(`shared::causes`, and the exit message), each level once. A message that also embeds
`{source}` would say the cause twice. scripts/test.sh runs this over every crate.

    scripts/error-sources.py [SRC_DIR...]   (default: every crate of the workspace)
"""
import glob
import os
import re
import sys


def variants(text):
    """(line, message, fields text, tuple?) of every #[error(...)] item."""
    attr = re.compile(r'#\[error\(((?:[^()]|\([^()]*\))*)\)\]')
    for m in attr.finditer(text):
        rest = text[m.end():]
        opening = re.search(r'[({;]', rest)
        if not opening or opening.group() == ';':
            continue
        start = opening.end()
        depth, i = 1, start
        while depth and i < len(rest):
            depth += {'(': 1, '{': 1, ')': -1, '}': -1}.get(rest[i], 0)
            i += 1
        yield text[:m.start()].count('\n') + 1, m.group(1), rest[start:i - 1], opening.group() == '('


def source_names(fields, is_tuple):
    names = []
    if is_tuple:
        for index, field in enumerate(f for f in fields.split(',') if f.strip()):
            if '#[from]' in field or '#[source]' in field:
                names.append('{%d}' % index)
    else:
        for m in re.finditer(r'(#\[(?:from|source)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:', fields):
            if m.group(1) or m.group(2) == 'source':
                names.append('{%s}' % m.group(2))
    return names


def main():
    dirs = sys.argv[1:]
    if not dirs:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
        dirs = [os.path.relpath(os.path.join(root, d)) for d in ['shared/src', 'tests/src']]
        dirs += sorted(os.path.relpath(d) for d in glob.glob(os.path.join(root, 'bins/*/src')))
    bad = 0
    for src in dirs:
        for path in sorted(glob.glob(os.path.join(src, '**/*.rs'), recursive=True)):
            text = open(path).read()
            for line, message, fields, is_tuple in variants(text):
                if message.strip() == 'transparent':
                    continue
                for name in source_names(fields, is_tuple):
                    if name in message:
                        print(f'{path}:{line}: the message prints its source {name}: {message.strip()[:80]}')
                        bad += 1
    print(f'error-sources: {bad} messages print their own cause')
    sys.exit(1 if bad else 0)


main()
