#!/usr/bin/env bash
# Install tfwrap from this checkout, on a machine that has only python3:
#   ./install.sh               venv in ${XDG_DATA_HOME:-~/.local/share}/tfwrap/venv, commands in ~/.local/bin
#   ./install.sh --prefix DIR  venv in DIR/venv, commands in DIR/bin (CI images: --prefix /opt/tfwrap)
#   ./install.sh --demo        also install the demo extra, then run `tfwrap demo`
#   ./install.sh --uninstall   remove what an earlier run installed (with the same --prefix)
# The commands: `tfwrap`, a symlink into the venv, and `terraform`, the sh shim placed by the
# venv's `tfwrap shim install` (the venv's Python written into it; issue 7). A `terraform` or
# `tfwrap` already in the bin directory that is not ours is never overwritten.
set -euo pipefail

readonly MARKER=.tfwrap-install # in the venv: install.sh made it, so --uninstall may remove it
readonly SHIM_MARK='# tfwrap-shim ' # second line of every tfwrap shim
readonly NAMES=(terraform tfwrap)

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { # $1 exit code, then the message: one line on stderr
    local code=$1
    shift
    say "$*"
    exit "$code"
}

usage() {
    cat <<'EOF'
Usage: ./install.sh [--prefix DIR] [--demo]
       ./install.sh [--prefix DIR] --uninstall

Installs tfwrap from this checkout into its own virtualenv and places two commands,
`tfwrap` and `terraform` (the drop-in shim), into a bin directory.

  --prefix DIR  venv in DIR/venv, commands in DIR/bin; put DIR/bin first in PATH
                (default: venv in ${XDG_DATA_HOME:-~/.local/share}/tfwrap/venv,
                commands in ~/.local/bin)
  --demo        also install the demo extra (local S3 server, Terraform engine),
                then run `tfwrap demo`
  --uninstall   remove the two commands and the venv an earlier run installed
  -h, --help    show this help

Running it again updates the install. PYTHON=/path/to/python3 picks the Python (>= 3.10).
EOF
}

# $1 as an absolute path with its existing part resolved (no symlinks), so the paths this
# script compares and writes into links come out the same on every run.
canon() {
    local p=$1 rest=""
    case $p in /*) ;; *) p=$PWD/$p ;; esac
    while [ "$p" != / ] && [ "${p%/}" != "$p" ]; do p=${p%/}; done
    while [ ! -d "$p" ]; do
        rest=/${p##*/}$rest
        p=${p%/*}
        [ -n "$p" ] || p=/
    done
    p=$(cd -P -- "$p" && pwd)
    printf '%s%s\n' "${p%/}" "$rest"
}

# Our link: a symlink whose target is inside our venv (what this script creates).
is_our_link() {
    [ -L "$1" ] || return 1
    case $(readlink -- "$1") in "$venv"/*) return 0 ;; esac
    return 1
}

# A tfwrap shim: a regular file (symlinks followed) whose second line starts with the marker.
has_shim_mark() {
    local l2
    [ -f "$1" ] || return 1
    { IFS= read -r _ && IFS= read -r l2; } <"$1" 2>/dev/null || return 1
    [[ $l2 == "$SHIM_MARK"* ]]
}

# The Python `tfwrap shim install` wrote into a shim (empty: none, an older layout's copy).
shim_python() {
    sed -n "s/^tfwrap_python='\(.*\)'\$/\1/p" -- "$1" 2>/dev/null | head -n 1
}

prefix=""
demo=0
uninstall=0
while [ $# -gt 0 ]; do
    case $1 in
    --prefix)
        if [ $# -lt 2 ] || [ -z "$2" ]; then
            die 2 "--prefix needs a directory (see ./install.sh --help)"
        fi
        prefix=$2
        shift 2
        ;;
    --prefix=?*)
        prefix=${1#--prefix=}
        shift
        ;;
    --demo)
        demo=1
        shift
        ;;
    --uninstall)
        uninstall=1
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die 2 "unknown option: $1 (see ./install.sh --help)" ;;
    esac
done
[ "$demo$uninstall" != 11 ] || die 2 "--demo and --uninstall do not go together"

if [ -n "$prefix" ]; then
    prefix=$(canon "$prefix")
    venv=$prefix/venv
    bindir=$prefix/bin
else
    [ -n "${HOME:-}" ] || die 1 "HOME is not set; set it, or use --prefix DIR"
    data=${XDG_DATA_HOME:-}
    case $data in /*) ;; *) data=$HOME/.local/share ;; esac # the XDG spec ignores relative paths
    venv=$(canon "$data/tfwrap")/venv
    bindir=$(canon "$HOME/.local/bin")
fi

# ---------------------------------------------------------------------------------- uninstall
if [ "$uninstall" = 1 ]; then
    removed=0
    for name in "${NAMES[@]}"; do
        f=$bindir/$name
        # Our symlink, or a shim file this venv's tfwrap placed (or an older copy naming no
        # Python). A shim another tfwrap placed (pipx), or a link to one, is that install's.
        owner=""
        [ -L "$f" ] || ! has_shim_mark "$f" || owner=$(shim_python "$f")
        if is_our_link "$f" || { [ ! -L "$f" ] && has_shim_mark "$f" &&
            { [ -z "$owner" ] || [ "$owner" = "$venv/bin/python" ]; }; }; then
            rm -f -- "$f"
            say "removed $f"
            removed=1
        elif [ -n "$owner" ]; then
            say "left $f alone: another tfwrap placed it (its Python is $owner)"
        elif [ -e "$f" ] || [ -L "$f" ]; then
            say "left $f alone: install.sh did not install it"
        fi
    done
    if [ -f "$venv/$MARKER" ]; then
        rm -rf -- "$venv"
        say "removed $venv"
        removed=1
        # The default layout's tfwrap data directory is ours too, once empty.
        [ -n "$prefix" ] || rmdir -- "${venv%/*}" 2>/dev/null || true
    elif [ -e "$venv" ]; then
        say "left $venv alone: it has no $MARKER, so install.sh did not make it"
    fi
    [ "$removed" = 1 ] || say "nothing to uninstall in $bindir or $venv"
    # The check cache is the user's, not the install's (issue 11): say where it stays.
    cache=${TFWRAP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tfwrap}
    say "left the cache directory $cache (remove it with: rm -rf $cache)"
    exit 0
fi

# ------------------------------------------------------------------------------------ install
src=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
[ -f "$src/pyproject.toml" ] || die 1 "no pyproject.toml next to install.sh in $src; run install.sh from a tfwrap checkout"

python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || die 1 "$python not found; install Python >= 3.10 (or set PYTHON=/path/to/python3)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null ||
    die 1 "$python is older than 3.10; install Python >= 3.10 (or set PYTHON=/path/to/python3)"

# Check everything before changing anything: no foreign command, no foreign venv.
foreign=()
for name in "${NAMES[@]}"; do
    f=$bindir/$name
    if [ -e "$f" ] || [ -L "$f" ]; then
        is_our_link "$f" || has_shim_mark "$f" || foreign+=("$f")
    fi
done
if [ ${#foreign[@]} -gt 0 ]; then
    what=${foreign[0]} it=it
    [ ${#foreign[@]} -eq 1 ] || what="${foreign[0]} and ${foreign[1]}" it=them
    die 1 "refusing to overwrite $what (not installed by tfwrap): move $it to another directory on PATH, or use --prefix DIR and put DIR/bin first in PATH"
fi
if [ -e "$venv" ] && [ ! -f "$venv/$MARKER" ] &&
    { [ ! -d "$venv" ] || [ -n "$(ls -A -- "$venv")" ]; }; then
    die 1 "refusing to use $venv: it exists but install.sh did not make it (no $MARKER); remove it or use --prefix DIR"
fi

mkdir -p -- "$bindir" "${venv%/*}"
# Now that they exist, name them without symlinks, as later runs and --uninstall will.
bindir=$(canon "$bindir")
venv=$(canon "${venv%/*}")/venv

updated=0
if [ -f "$venv/$MARKER" ] && "$venv/bin/python" -c '' 2>/dev/null; then
    updated=1
else
    # New, or ours but broken (its Python is gone): make it afresh.
    say "creating a virtualenv in $venv"
    if ! out=$("$python" -m venv --clear "$venv" 2>&1); then
        printf '%s\n' "$out" >&2
        rm -rf -- "$venv"
        die 1 "$python -m venv failed (output above); on Debian/Ubuntu: apt-get install python3-venv"
    fi
    printf 'tfwrap venv made by %s/install.sh; ./install.sh --uninstall removes it\n' "$src" >"$venv/$MARKER"
fi

# Build from a copy of the sources: pip builds in the source tree, and a stale build/ there
# can leak removed modules into the wheel (and the checkout may be read-only).
stage=$(mktemp -d "${TMPDIR:-/tmp}/tfwrap-install.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
for f in pyproject.toml setup.cfg setup.py MANIFEST.in README.md LICENSE tfwrap; do
    [ ! -e "$src/$f" ] || cp -R -- "$src/$f" "$stage/"
done
spec=$stage
[ "$demo" = 0 ] || spec="${stage}[demo]"
say "installing tfwrap$([ "$demo" = 0 ] || echo ' with the demo extra') into $venv (pip, about a minute)"
if ! out=$("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$spec" 2>&1); then
    printf '%s\n' "$out" >&2
    die 1 "pip install failed (output above); fix the cause and run ./install.sh again"
fi
rm -rf -- "$stage"
trap - EXIT

[ -x "$venv/bin/tfwrap" ] || die 1 "pip did not install $venv/bin/tfwrap; the checkout in $src looks broken"
ln -sfn -- "$venv/bin/tfwrap" "$bindir/tfwrap"
# The shim is placed, never installed by pip (issue 7); foreign files were refused above.
# An older install linked bin/terraform into the venv, where pip no longer puts one.
! is_our_link "$bindir/terraform" || rm -f -- "$bindir/terraform"
if ! out=$("$venv/bin/tfwrap" shim install --dir "$bindir" 2>&1); then
    printf '%s\n' "$out" >&2
    die 1 "tfwrap shim install failed (output above)"
fi

if [ "$updated" = 1 ]; then
    say "already installed, updated: $venv"
else
    say "installed tfwrap into $venv"
fi
say "commands: $bindir/tfwrap and $bindir/terraform"

# The shim must come before the real terraform on PATH.
on_path=0
first="" # the directory of the first terraform on PATH
path_dirs=()
[ -z "${PATH:-}" ] || IFS=: read -r -a path_dirs <<<"$PATH"
for d in ${path_dirs[@]+"${path_dirs[@]}"}; do
    d=$(canon "${d:-.}")
    [ "$d" != "$bindir" ] || on_path=1
    if [ -z "$first" ] && [ -x "$d/terraform" ] && [ ! -d "$d/terraform" ]; then
        first=$d
    fi
done
if [ "$on_path" = 0 ]; then
    say "$bindir is not on PATH; add it first: export PATH=\"$bindir:\$PATH\""
elif [ "$first" != "$bindir" ]; then
    say "$first/terraform comes first on PATH; put $bindir before it: export PATH=\"$bindir:\$PATH\""
fi

if [ "$demo" = 1 ]; then
    say "running $bindir/tfwrap demo"
    PATH=$bindir:${PATH:-} exec "$bindir/tfwrap" demo
fi
