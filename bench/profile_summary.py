#!/usr/bin/env python3
"""Summarise a callgrind profile of `bench_overhead profile` (bench/README.md).

    python3 bench/profile_summary.py LLMR.out RAW.out RAWX.out CALLS > profile.md

Three callgrind runs of the same program, each collecting one function
(--toggle-collect): profile_llmr (llmr_complete), profile_raw (raw libcurl,
curl_easy_perform) and profile_rawx (raw libcurl set up and driven the way
the library sets up and drives it). CALLS is the number of calls each made
in total (warm-up included). Reads the callgrind output format directly
(no callgrind_annotate), builds the call graph with inclusive costs per
edge, and prints Markdown: instructions per call for both paths, a
top-down tree of libllmroute's own functions under profile_llmr() (a
library function is a leaf), our functions by self and inclusive cost, and
the library calls our code makes directly, by caller.
"""
import collections
import re
import sys

OURS = re.compile(r'/(src|bench)/')


def parse(path):
    files, fns = {}, {}
    self_cost = collections.Counter()
    edges = collections.defaultdict(lambda: [0, 0])  # (caller, callee) -> [calls, Ir]
    fl = cfl = None
    fn = cfn = None
    pending_calls = None

    def name(table, s):
        m = re.match(r'\((\d+)\)(?: (.*))?$', s)
        if not m:
            return s
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), '?')

    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line or line[0] == '#':
                continue
            if line.startswith('fl='):
                fl = name(files, line[3:])
            elif line.startswith(('fi=', 'fe=')):
                name(files, line[3:])  # inlined code: cost stays with fn
            elif line.startswith('fn='):
                fn = (fl, name(fns, line[3:]))
                cfl = None
            elif line.startswith(('cfl=', 'cfi=')):
                cfl = name(files, line[4:])
            elif line.startswith('cfn='):
                cfn = (cfl or fl, name(fns, line[4:]))
                cfl = None
            elif line.startswith('calls='):
                pending_calls = int(line[6:].split()[0])
            elif line[0] in '0123456789+-*':
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_calls is not None:
                    e = edges[(fn, cfn)]
                    e[0] += pending_calls
                    e[1] += cost
                    pending_calls = None
                elif fn is not None:
                    self_cost[fn] += cost
            # other lines (events:, summary:, totals:, ob=, ...) are ignored
    return self_cost, edges


def label(key):
    fl, fn = key
    if OURS.search(fl or ''):
        return f'{fn} ({fl.split("/src/")[-1] if "/src/" in fl else fl.split("/")[-1]})'
    lib = (fl or '???').split('/')[-1]
    return f'{fn} [{lib}]' if lib != '???' else fn


def path_total(path, fname):
    """Inclusive Ir of fname and calls to the allocator in one run."""
    self_cost, edges = parse(path)
    incl = collections.Counter(self_cost)
    allocs = frees = 0
    for (a, b), (n, c) in edges.items():
        if a != b:
            incl[a] += c
        if b[1] in ('malloc', 'calloc', 'realloc'):
            allocs += n
        elif b[1] in ('free', 'cfree'):
            frees += n
    ks = [k for k in incl if k[1] == fname]
    if not ks:
        sys.exit(f'{fname} not found in {path}: was callgrind run with '
                 f'--toggle-collect={fname}?')
    return incl[max(ks, key=lambda k: incl[k])], allocs, frees


def main():
    path, path_raw, path_rawx, calls = sys.argv[1:5]
    calls = int(calls)
    self_cost, edges = parse(path)
    callees = collections.defaultdict(list)
    callers = collections.defaultdict(list)
    for (a, b), (n, c) in edges.items():
        callees[a].append((b, n, c))
        callers[b].append((a, n, c))
    incl = collections.Counter(self_cost)
    for (a, b), (n, c) in edges.items():
        if a != b:
            incl[a] += c

    def find(fname):
        ks = [k for k in incl if k[1] == fname]
        return max(ks, key=lambda k: incl[k]) if ks else None

    pl = find('profile_llmr')
    if not pl:
        sys.exit('profile_llmr not found: was callgrind run with '
                 '--toggle-collect=profile_llmr?')
    total_l, al_l, fr_l = path_total(path, 'profile_llmr')
    total_r, al_r, fr_r = path_total(path_raw, 'profile_raw')
    total_x, al_x, fr_x = path_total(path_rawx, 'profile_rawx')
    per = lambda x: x / calls

    out = []
    out.append(f'Instructions (callgrind Ir, user space only) and allocator '
               f'calls per call, {calls} calls each:\n')
    out.append('| path | Ir per call | × raw | malloc+calloc+realloc per call | free per call |')
    out.append('| --- | ---: | ---: | ---: | ---: |')
    out.append(f'| raw libcurl (curl_easy_perform, reused handle) | {per(total_r):,.0f} | 1.00 | {al_r / calls:.1f} | {fr_r / calls:.1f} |')
    out.append(f'| raw libcurl set up and driven like the library (its easy-handle options, share handle, own multi loop) | {per(total_x):,.0f} | {total_x / total_r:.2f} | {al_x / calls:.1f} | {fr_x / calls:.1f} |')
    out.append(f'| llmr_complete | {per(total_l):,.0f} | {total_l / total_r:.2f} | {al_l / calls:.1f} | {fr_l / calls:.1f} |')
    out.append(f'| llmr_complete minus raw libcurl | {per(total_l - total_r):+,.0f} | | {(al_l - al_r) / calls:+.1f} | {(fr_l - fr_r) / calls:+.1f} |')
    out.append(f'| of which: curl set up and driven like the library | {per(total_x - total_r):+,.0f} | | {(al_x - al_r) / calls:+.1f} | {(fr_x - fr_r) / calls:+.1f} |')
    out.append(f'| of which: libllmroute\'s own work | {per(total_l - total_x):+,.0f} | | {(al_l - al_x) / calls:+.1f} | {(fr_l - fr_x) / calls:+.1f} |')

    # top-down tree of our code under profile_llmr
    out.append('\nTop-down, under llmr_complete: libllmroute functions are expanded, '
               'library functions are leaves (libcurl has no symbols here; our '
               'callbacks that curl calls are counted inside curl_multi_perform). '
               'Ir per call and share of the llmr_complete path; edges under '
               '0.4 % are left out. A function called from several places is '
               'split between them in proportion.\n')
    out.append('```')
    limit = 0.004 * total_l

    # callgrind keeps no calling context: a function reached from two
    # places has one set of outgoing edges, so each place gets its share
    # (the cost that reached it over the function's whole inclusive cost)
    def walk(key, cost, depth, seen):
        out.append(f'{per(cost):>10,.0f} {100 * cost / total_l:5.1f}%  '
                   f'{"  " * depth}{label(key)}')
        if not OURS.search(key[0] or '') or depth > 12 or key in seen:
            return
        share = min(1.0, cost / incl[key]) if incl[key] else 0
        kids = sorted(callees.get(key, []), key=lambda t: -t[2])
        for (b, n, c) in kids:
            if c * share >= limit and b != key:
                walk(b, c * share, depth + 1, seen | {key})
        s = self_cost[key] * share
        if s >= limit:
            out.append(f'{per(s):>10,.0f} {100 * s / total_l:5.1f}%  '
                       f'{"  " * (depth + 1)}(self)')

    for (b, n, c) in sorted(callees[pl], key=lambda t: -t[2]):
        if c >= limit:
            walk(b, c, 0, frozenset())
    out.append('```')

    ours = [k for k in incl if OURS.search(k[0] or '') and '/bench/' not in k[0]]
    out.append('\nlibllmroute functions by self cost (their own instructions, '
               'not their callees\'), all calls in the run, per llmr_complete call:\n')
    out.append('| function | self Ir per call | % of llmr path | inclusive Ir per call |')
    out.append('| --- | ---: | ---: | ---: |')
    for k in sorted(ours, key=lambda k: -self_cost[k])[:20]:
        if self_cost[k] == 0:
            break
        out.append(f'| {label(k)} | {per(self_cost[k]):,.0f} | '
                   f'{100 * self_cost[k] / total_l:.1f} | {per(incl[k]):,.0f} |')
    out.append('\nlibllmroute functions by inclusive cost:\n')
    out.append('| function | inclusive Ir per call | % of llmr path | calls per call |')
    out.append('| --- | ---: | ---: | ---: |')
    for k in sorted(ours, key=lambda k: -incl[k])[:30]:
        ncalls = sum(n for (_, n, _) in callers.get(k, []))
        out.append(f'| {label(k)} | {per(incl[k]):,.0f} | '
                   f'{100 * incl[k] / total_l:.1f} | {ncalls / calls:.1f} |')

    out.append('\nLibrary functions called directly by libllmroute code, by caller '
               '(inclusive, per llmr_complete call):\n')
    out.append('| library function | called from | calls per call | Ir per call | % of llmr path |')
    out.append('| --- | --- | ---: | ---: | ---: |')
    rows = []
    for (a, b), (n, c) in edges.items():
        if a in ours and not OURS.search(b[0] or ''):
            rows.append((c, n, a, b))
    for c, n, a, b in sorted(rows, reverse=True)[:30]:
        out.append(f'| {label(b)} | {a[1]} | {n / calls:.1f} | {per(c):,.0f} | '
                   f'{100 * c / total_l:.1f} |')
    print('\n'.join(out))


if __name__ == '__main__':
    main()
