#!/usr/bin/env bash
# Installs the WireGuard reference peer for the e2e tests and `vectun bench wg`:
#   - the `wg` tool (Debian's wireguard-tools),
#   - wireguard-go, built from Debian's golang-golang.zx2c4-wireguard-dev source
#     with golang-1.23-go, both from bookworm-backports (added next to the
#     existing Debian source), offline (GOPROXY=off, GO111MODULE=off).
# Idempotent and cached: apt runs only for what is missing, and the binary is
# built only when $VECTUN_WG_CACHE/wireguard-go is missing. Safe to run
# concurrently (one flock). Prints the two paths on its last lines:
#   wireguard-go=/var/cache/vectun/wireguard-go
#   wg=/usr/bin/wg
# Run as root.
set -euo pipefail

cache_dir="${VECTUN_WG_CACHE:-/var/cache/vectun}"
binary="$cache_dir/wireguard-go"
source_dir=/usr/share/gocode/src/golang.zx2c4.com/wireguard
go_bin=/usr/lib/go-1.23/bin/go
backports_list=/etc/apt/sources.list.d/vectun-bookworm-backports.sources

log() { printf 'install-wireguard-go: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "must run as root"; exit 1; }

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.install.lock"
flock 9

# Adds bookworm-backports with the same URIs and signing key as the existing
# bookworm entry (deb822), unless some source already lists that suite.
add_backports() {
  if grep -rqsE '(^|\s)bookworm-backports(\s|$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return
  fi
  local uri=http://deb.debian.org/debian
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  log "adding bookworm-backports ($backports_list)"
  cat >"$backports_list" <<SOURCES
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: $keyring
SOURCES
  apt_updated=0
}

apt_updated=0
apt_update_once() {
  if ((apt_updated == 0)); then
    apt-get update -qq
    apt_updated=1
  fi
}

export DEBIAN_FRONTEND=noninteractive

if ! command -v wg >/dev/null 2>&1; then
  log "installing wireguard-tools"
  apt_update_once
  apt-get install -y -qq --no-install-recommends wireguard-tools >/dev/null
fi

if [[ ! -x $binary ]]; then
  if [[ ! -x $go_bin || ! -d $source_dir ]]; then
    add_backports
    apt_update_once
    log "installing golang-1.23-go and golang-golang.zx2c4-wireguard-dev from bookworm-backports"
    apt-get install -y -qq --no-install-recommends -t bookworm-backports \
      golang-1.23-go golang-golang.zx2c4-wireguard-dev >/dev/null
  fi
  log "building wireguard-go from $source_dir"
  build_dir=$(mktemp -d)
  trap 'rm -rf "$build_dir"' EXIT
  (
    cd "$source_dir"
    GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
      GOCACHE="$build_dir/cache" CGO_ENABLED=0 \
      "$go_bin" build -o "$build_dir/wireguard-go" .
  )
  install -m 0755 "$build_dir/wireguard-go" "$binary.tmp"
  mv -f "$binary.tmp" "$binary"
fi

"$binary" --version >&2 || { log "$binary does not run"; exit 1; }
echo "wireguard-go=$binary"
echo "wg=$(command -v wg)"
