#!/usr/bin/env python3
"""Functions and files in src/ that are longer than the project allows.

Prints every function (`fn name … { … }`, methods and nested ones included)
longer than --fn-lines (80) and every file with more than --file-lines (500)
lines of non-test code. Non-test code is the file without its inline
`#[cfg(test)] mod … { … }` blocks; files declared as `#[cfg(test)] mod x;`
and files named `tests.rs` are left out entirely. A function counts from the
line of `fn` to its closing brace, blank and comment lines included (what a
reader scrolls through).

A long function may carry its reason: a comment `// long-fn: <why>` among
the lines just above it (its doc comment and attributes). Such functions are
listed apart and do not count as over the limit.

    scripts/code-size.py [--fn-lines 80] [--file-lines 500] [--exclude PATH ...] [ROOT]

Exit status 1 when anything is over the limit (so CI can use it), else 0.
"""

import argparse
import os
import re
import sys

REASON = re.compile(r"//\s*long-fn:\s*(.+)")


def blank_literals(text):
    """The text with comments, strings and char literals replaced by spaces
    (newlines kept), so braces and `fn` inside them are not seen."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    ident = lambda c: c.isalnum() or c == "_"
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if c == "/" and nxt == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        if c in "rb" and (i == 0 or not ident(text[i - 1])):
            m = re.match(r'(br|r)(#*)"', text[i:])
            if m:
                close = '"' + m.group(2)
                j = text.find(close, i + m.end())
                j = n if j < 0 else j + len(close)
                blank(i, j)
                i = j
                continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
            continue
        if c == "'":
            # A char literal ('x', '\n', '\u{1F6A8}'); a lifetime has no closing quote.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                blank(i, i + m.end())
                i += m.end()
                continue
        i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1


def line_of(code, offset):
    return code.count("\n", 0, offset) + 1


def test_ranges(code):
    """(first line, last line) of each inline `#[cfg(test)] mod x { … }`, and
    the names of modules declared `#[cfg(test)] mod x;`."""
    ranges, external = [], []
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([{;])", code):
        if m.group(2) == ";":
            external.append(m.group(1))
            continue
        end = matching_brace(code, m.end() - 1)
        ranges.append((line_of(code, m.start()), line_of(code, end)))
    return ranges, external


def functions(code):
    """(name, first line, last line, offset of `fn`) of every function with a body."""
    for m in re.finditer(r"\bfn\s+(\w+)", code):
        k, depth = m.end(), 0
        while k < len(code):
            c = code[k]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif depth == 0 and c == ";":
                k = -1  # a declaration without a body
                break
            elif depth == 0 and c == "{":
                break
            k += 1
        if k < 0 or k >= len(code):
            continue
        end = matching_brace(code, k)
        yield m.group(1), line_of(code, m.start()), line_of(code, end)


def reason_above(lines, fn_line):
    """The `// long-fn:` reason among the doc comments, attributes and
    comments directly above line `fn_line` (1-based)."""
    k = fn_line - 2
    while k >= 0:
        s = lines[k].strip()
        m = REASON.search(s)
        if m:
            return m.group(1).strip()
        if s.startswith(("//", "#[", "#![")) or s.endswith(")]"):
            k -= 1
            continue
        break
    # The signature line itself may carry it.
    m = REASON.search(lines[fn_line - 1])
    return m.group(1).strip() if m else None


def rust_files(src):
    for dirpath, _, names in os.walk(src):
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.join(dirpath, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--fn-lines", type=int, default=80)
    ap.add_argument("--file-lines", type=int, default=500)
    ap.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="a path under src/ (file or folder) to leave out; repeatable",
    )
    args = ap.parse_args()
    src = os.path.normpath(os.path.join(args.root, "src"))

    files = sorted(rust_files(src))
    parsed, test_files = {}, set()
    for path in files:
        text = open(path, encoding="utf-8").read()
        code = blank_literals(text)
        ranges, external = test_ranges(code)
        parsed[path] = (text, code, ranges)
        here = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        for name in external:
            # `mod x;` in a/mod.rs or a/lib.rs → a/x.rs; in a/b.rs → a/b/x.rs
            base = here if stem in ("mod", "lib", "main") else os.path.join(here, stem)
            test_files.add(os.path.join(base, name + ".rs"))
            test_files.add(os.path.join(base, name, "mod.rs"))

    excluded = [os.path.normpath(os.path.join(src, e.removeprefix("src/"))) for e in args.exclude]

    def skip(path):
        return any(path == e or path.startswith(e + os.sep) for e in excluded)

    long_fns, reasoned, long_files = [], [], []
    for path in files:
        rel = os.path.relpath(path, os.path.dirname(src))
        if path in test_files or os.path.basename(path) == "tests.rs" or skip(path):
            continue
        text, code, ranges = parsed[path]
        lines = text.split("\n")
        in_tests = lambda ln: any(a <= ln <= b for a, b in ranges)
        total = len(text.rstrip("\n").split("\n"))
        test_lines = sum(b - a + 1 for a, b in ranges)
        if total - test_lines > args.file_lines:
            long_files.append((total - test_lines, rel))
        for name, first, last in functions(code):
            size = last - first + 1
            if size <= args.fn_lines or in_tests(first):
                continue
            why = reason_above(lines, first)
            entry = (size, f"{rel}:{first}", name, why)
            (reasoned if why else long_fns).append(entry)

    print(f"functions over {args.fn_lines} lines: {len(long_fns)}")
    for size, where, name, _ in sorted(long_fns, reverse=True):
        print(f"  {size:5}  {where}  {name}")
    print(f"files over {args.file_lines} non-test lines: {len(long_files)}")
    for size, rel in sorted(long_files, reverse=True):
        print(f"  {size:5}  {rel}")
    if reasoned:
        print(f"long functions with a reason (// long-fn:): {len(reasoned)}")
        for size, where, name, why in sorted(reasoned, reverse=True):
            print(f"  {size:5}  {where}  {name}: {why}")
    return 1 if long_fns or long_files else 0


if __name__ == "__main__":
    sys.exit(main())
