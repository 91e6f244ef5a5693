#!/bin/sh
# Check the man pages against the shared library.
#
#   scripts/check-man.sh [LIBRARY]      (default: build/libllmroute.so)
#
# Fails unless
#   - every function the library exports (nm -D --defined-only, type T) has
#     man/man3/<symbol>.3 (a page of its own, or a one-line ".so man3/x.3"),
#   - every page under man/ renders with groff (or man) without a warning,
#   - every function page has the template's sections (NAME, SYNOPSIS,
#     DESCRIPTION, RETURN VALUE, EXAMPLE, SEE ALSO, AVAILABILITY),
#   - every llmr_* / llmroute* page named in a cross-reference exists.
#
# Exit status: 0 all good, 1 a check failed, 2 the checks could not run
# (no library, no nm, neither groff nor man).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:-$here/build/libllmroute.so}
mandir=$here/man

if [ ! -f "$lib" ]; then
    echo "check-man: no library at $lib (run 'make lib' first)" >&2
    exit 2
fi
if ! command -v nm >/dev/null 2>&1; then
    echo "check-man: nm not found (install binutils)" >&2
    exit 2
fi
# CHECK_MAN_RENDER=groff|man picks one; by default groff, else man.
render=${CHECK_MAN_RENDER:-}
if [ -z "$render" ]; then
    if command -v groff >/dev/null 2>&1; then
        render=groff
    elif command -v man >/dev/null 2>&1; then
        render=man
    fi
fi
if [ -z "$render" ] || ! command -v "$render" >/dev/null 2>&1; then
    echo "check-man: neither groff nor man is installed (apt-get install groff)" >&2
    exit 2
fi

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0

# ---- 1. a page for every exported function -------------------------------

if ! nm -D --defined-only "$lib" >"$tmp/nm" 2>"$tmp/nm.err"; then
    echo "check-man: nm failed on $lib:" >&2
    cat "$tmp/nm.err" >&2
    exit 2
fi
awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | sort -u >"$tmp/syms"
nsyms=$(wc -l <"$tmp/syms" | tr -d ' ')
if [ "$nsyms" -eq 0 ]; then
    echo "check-man: $lib exports no functions" >&2
    exit 2
fi
nmissing=0
while read -r sym; do
    if [ ! -f "$mandir/man3/$sym.3" ]; then
        [ "$nmissing" -eq 0 ] && echo "check-man: exported functions without a man page:"
        echo "  $sym  (want man/man3/$sym.3)"
        nmissing=$((nmissing + 1))
    fi
done <"$tmp/syms"
[ "$nmissing" -gt 0 ] && fail=1

# ---- 2. every page renders without warnings ------------------------------

# Run from man/ so that ".so man3/x.3" resolves as it does in an installed
# man tree.
cd "$mandir" || exit 2
ls man1/*.1 man3/*.3 2>/dev/null >"$tmp/pages"
npages=$(wc -l <"$tmp/pages" | tr -d ' ')
nwarn=0
while read -r page; do
    if [ "$render" = groff ]; then
        groff -man -Tutf8 -ww -z "$page" >"$tmp/out" 2>&1
    else
        # man-db passes "-w<name>" to groff; "w" gives -ww, every warning
        MANWIDTH=80 man --warnings=w -E UTF-8 -l "$page" >/dev/null 2>"$tmp/out"
    fi
    rc=$?
    if [ "$rc" -ne 0 ] || [ -s "$tmp/out" ]; then
        echo "check-man: $page: $render reports problems (exit $rc):"
        sed 's/^/  /' "$tmp/out"
        nwarn=$((nwarn + 1))
    fi
done <"$tmp/pages"
[ "$nwarn" -gt 0 ] && fail=1

# ---- 3. the template's sections on every function page -------------------

nsect=0
for page in man3/llmr_*.3; do
    grep -q '^\.so ' "$page" && continue
    for s in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" EXAMPLE "SEE ALSO" AVAILABILITY; do
        if ! grep -q "^\.SH \"\{0,1\}$s\"\{0,1\}\$" "$page"; then
            echo "check-man: $page: no $s section"
            nsect=$((nsect + 1))
        fi
    done
done
# a stub must point at a page that exists
for page in man1/*.1 man3/*.3; do
    target=$(sed -n 's/^\.so  *//p' "$page" | head -n 1)
    if [ -n "$target" ] && [ ! -f "$target" ]; then
        echo "check-man: $page: .so target $target does not exist"
        nsect=$((nsect + 1))
    fi
done
[ "$nsect" -gt 0 ] && fail=1

# ---- 4. cross-references to our own pages resolve ------------------------

# the ".BR name (3)" form, also inside .RB and .IR; "\-" in a name is "-"
grep -ho '\(llmr[a-z0-9_]*\|llmroute[a-z0-9\\-]*\) ([0-9])' man1/*.1 man3/*.3 |
    sed -e 's/\\-/-/g' -e 's/ (\([0-9]\))/ \1/' | sort -u >"$tmp/refs"
nref=0
while read -r name sect; do
    if [ ! -f "man$sect/$name.$sect" ]; then
        echo "check-man: a page refers to $name($sect), which does not exist"
        nref=$((nref + 1))
    fi
done <"$tmp/refs"
[ "$nref" -gt 0 ] && fail=1

status=OK
[ "$fail" -ne 0 ] && status=FAILED
echo "check-man: $nsyms exported functions, $nmissing without a page; $npages pages checked with $render, $nwarn with warnings, $nsect template problems, $nref broken references: $status"
exit "$fail"
