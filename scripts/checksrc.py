#!/usr/bin/env python3
"""A source check run by `make test` (curl's checksrc is the model): refuses
calls that docs/style.md rules out, in the project's own C files.

- Everywhere (src/, tests/, bench/): sprintf, vsprintf, strcpy, strcat,
  strncpy, strncat, gets, strtok, atoi, atol, atoll, atof, alloca, system,
  popen — each has a bounded or checked replacement (snprintf, util_strlcpy,
  strtol with an end check, strtok_r, fork/exec).
- In src/ (the daemon and the CLI): every open, openat, socket, socketpair
  and accept4 names its CLOEXEC flag in the same call, and fopen's mode has
  "e", so that no descriptor leaks into a child (the CLI runs ssh).

- In src/MODULE/, an #include of another module's header only downwards,
  as docs/architecture.md draws the layers (the link check in
  tests/layers/ holds the same rule for calls).

Comments and string literals are ignored. A line may carry
`checksrc: allow NAME` in a comment for a reviewed exception. Prints
FILE:LINE: message for each finding; exits 1 if there is any.
"""
import re
import subprocess
import sys

BANNED = ['sprintf', 'vsprintf', 'strcpy', 'strcat', 'strncpy', 'strncat', 'gets',
          'strtok', 'atoi', 'atol', 'atoll', 'atof', 'alloca', 'system', 'popen']
CLOEXEC_CALLS = {'open': 'O_CLOEXEC', 'openat': 'O_CLOEXEC', 'socket': 'SOCK_CLOEXEC',
                 'socketpair': 'SOCK_CLOEXEC', 'accept4': 'SOCK_CLOEXEC'}


# What each module may include besides itself (docs/architecture.md).
LAYERS = {
    'core': set(),
    'store': {'core'},
    'ssh': {'core'},
    'server': {'core'},
    'identity': {'core', 'store'},
    'vault': {'core', 'store'},
    'authz': {'core', 'store', 'identity'},
    'terminal': {'core', 'store', 'ssh', 'server'},
    'api': {'core', 'store', 'ssh', 'server', 'identity', 'vault', 'authz', 'terminal'},
    'cli': {'core', 'store'},
}


def check_includes(path, text):
    parts = path.split('/')
    if len(parts) != 3 or parts[0] != 'src' or parts[1] not in LAYERS:
        return []
    mod = parts[1]
    found = []
    for n, line in enumerate(text.split('\n'), 1):
        m = re.match(r'\s*#\s*include\s+"([a-z]+)/', line)
        if m and m.group(1) != mod and m.group(1) not in LAYERS[mod]:
            found.append(f'{path}:{n}: {mod}/ includes {m.group(1)}/, a module above it '
                         '(docs/architecture.md)')
    return found


def strip(text):
    """Blanks comments and string/char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            lit = text[i:j]
            # keep fopen's mode visible to the check below
            out.append(c + re.sub(r'[^\n]', ' ', lit[1:-1]) + c if len(lit) >= 2 else lit)
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def call_args(code, start):
    """The text of the argument list of the call whose '(' is at start."""
    depth = 0
    for j in range(start, min(len(code), start + 2000)):
        if code[j] == '(':
            depth += 1
        elif code[j] == ')':
            depth -= 1
            if depth == 0:
                return code[start + 1:j]
    return code[start + 1:start + 2000]


def check(path, text):
    problems = []
    raw_lines = text.split('\n')
    code = strip(text)
    in_src = path.startswith('src/')
    for m in re.finditer(r'(?<![\w.>])([A-Za-z_]\w*)\s*\(', code):
        name = m.group(1)
        line = code.count('\n', 0, m.start()) + 1
        if f'checksrc: allow {name}' in raw_lines[line - 1]:
            continue
        # a declaration or definition of our own with that name is not a call
        before = code[max(0, m.start() - 40):m.start()]
        if re.search(r'(\bstatic\b|\bint\b|\bvoid\b|\bchar\b|\*)\s*$', before) and name in BANNED:
            problems.append((line, f'defines {name}(), a name docs/style.md rules out'))
            continue
        if name in BANNED:
            problems.append((line, f'{name}() is not used here (docs/style.md "Memory and input")'))
        elif in_src and name in CLOEXEC_CALLS:
            args = call_args(code, m.end() - 1)
            if CLOEXEC_CALLS[name] not in args:
                problems.append((line, f'{name}() without {CLOEXEC_CALLS[name]}'))
        elif in_src and name == 'fopen':
            # the mode is the last string in the call's raw text
            raw_args = call_args(text, m.end() - 1)
            modes = re.findall(r'"([^"\n]*)"', raw_args)
            if not modes or 'e' not in modes[-1]:
                problems.append((line, 'fopen() mode without "e" (close-on-exec)'))
    return [f'{path}:{line}: {msg}' for line, msg in problems]


def main():
    if len(sys.argv) > 1:
        files = sys.argv[1:]
    else:
        files = subprocess.run(['git', 'ls-files', 'src/*.c', 'src/*.h', 'tests/unit/*.c',
                                'tests/fuzz/*.c', 'tests/layers/*.c', 'bench/*.c'],
                               capture_output=True, text=True, check=True).stdout.split()
    found = []
    for f in files:
        with open(f, encoding='utf-8', errors='replace') as fh:
            text = fh.read()
            found += check(f, text) + check_includes(f, text)
    for line in found:
        print(line)
    print(f'checksrc: {len(files)} files, {len(found)} problems')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
