#!/usr/bin/env bash
# common.sh: helpers shared by the image component scripts (sourced, never run).
#
# Provides log/warn/die with a [script] prefix, bounded downloads with retries,
# SHA-256 checks, idempotent symlinks and apt installs. PWB_ROOT (default empty)
# prefixes every path the scripts write, so tests can run them in a scratch tree.
# Safe to source more than once.

# Bounds for every download: connect within 15 s, finish within 30 min, 5 retries.
PWB_CURL_CONNECT_TIMEOUT="${PWB_CURL_CONNECT_TIMEOUT:-15}"
PWB_CURL_MAX_TIME="${PWB_CURL_MAX_TIME:-1800}"
PWB_CURL_RETRIES="${PWB_CURL_RETRIES:-5}"
PWB_ROOT="${PWB_ROOT:-}"

log() { printf '[%s] %s\n' "${SCRIPT_NAME:-image}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${SCRIPT_NAME:-image}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME:-image}" "$*" >&2
  exit 1
}

# Print the comment block at the top of a script (its header) as usage text.
print_header() {
  local file="$1"
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${file}"
}

# fetch URL DEST: bounded download with retries; fails on HTTP errors.
fetch() {
  local url="$1" dest="$2"
  log "downloading ${url}"
  curl --fail --silent --show-error --location \
    --connect-timeout "${PWB_CURL_CONNECT_TIMEOUT}" --max-time "${PWB_CURL_MAX_TIME}" \
    --retry "${PWB_CURL_RETRIES}" --retry-delay 5 --retry-connrefused \
    --output "${dest}" "${url}" || die "download failed: ${url}"
}

# verify_sha256 FILE EXPECTED: die unless the file has that SHA-256.
verify_sha256() {
  local file="$1" expected="$2" actual
  actual="$(sha256sum "${file}" | awk '{ print $1 }')"
  [[ "${actual}" == "${expected}" ]] ||
    die "checksum mismatch for ${file##*/}: expected ${expected}, got ${actual}"
  log "checksum ok: ${file##*/}"
}

# published_sha256 SUMS NAME: the SHA-256 that a `sha256sum`-style file lists for NAME.
published_sha256() {
  awk -v n="$2" '$2 == n || $2 == "*" n { print $1; exit }' "$1"
}

# expected_sha256 NAME PUBLISHED PINNED: the checksum to verify NAME against. The
# vendor's published value is used; a pinned value (from the config) must agree with it.
expected_sha256() {
  local name="$1" published="$2" pinned="$3"
  [[ -n "${published}" ]] || die "${name} is not listed in the vendor's published checksums"
  if [[ -n "${pinned}" && "${pinned,,}" != "${published,,}" ]]; then
    die "pinned SHA-256 for ${name} (${pinned}) differs from the vendor's published ${published}"
  fi
  printf '%s' "${published,,}"
}

# link_if_needed TARGET LINK: (re)point LINK at TARGET only when it differs.
link_if_needed() {
  local target="$1" link="$2"
  if [[ -L "${link}" && "$(readlink "${link}")" == "${target}" ]]; then
    return 0
  fi
  mkdir -p "$(dirname "${link}")"
  ln -sfn "${target}" "${link}"
  log "linked ${link} -> ${target}"
}

# deb_version PACKAGE: the installed version of a Debian package, or nothing.
deb_version() {
  { dpkg-query --show --showformat='${Status} ${Version}\n' "$1" 2>/dev/null || true; } |
    awk '$1 == "install" && $3 == "installed" { print $4 }'
}

apt_updated=""
apt_install() {
  if [[ -z "${apt_updated}" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
    --no-install-recommends "$@"
}

# make_workdir: a temporary directory removed when the script exits.
make_workdir() {
  PWB_WORKDIR="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -rf '${PWB_WORKDIR}'" EXIT
}

# posit_deb_url BASE OS PACKAGE VERSION: where Posit publishes its R and Python builds.
posit_deb_url() {
  printf '%s/%s/pkgs/%s-%s_1_amd64.deb' "$1" "$2" "$3" "$4"
}

# pin_for VERSION PINS: the SHA-256 that PINS ("4.5.3=HEX 4.4.3=HEX") gives VERSION, or nothing.
# A malformed entry is an error, not a silently unpinned version.
pin_for() {
  local version="$1" entry
  for entry in $2; do
    [[ "${entry}" =~ ^[0-9]+\.[0-9]+\.[0-9]+=[0-9a-f]{64}$ ]] ||
      die "bad checksum pin '${entry}': expected VERSION=SHA256 (64 lower-case hex digits)"
    [[ "${entry%%=*}" == "${version}" ]] && { printf '%s' "${entry#*=}"; return 0; }
  done
  return 0
}

# install_posit_build LABEL PACKAGE VERSION OS BASE BINARY [SHA256]: install one of Posit's
# .deb builds unless BINARY (a path under PWB_ROOT) is already there; it must be there
# afterwards. Posit publishes no checksums for these builds: with SHA256 (the config's pin)
# the package must match it before apt sees it; without, the build warns, naming the file.
install_posit_build() {
  local label="$1" package="$2" version="$3" os="$4" base="$5" binary="$6" sha256="${7:-}"
  local deb url
  if [[ -x "${PWB_ROOT}${binary}" ]]; then
    log "${label} ${version} already installed"
    return 0
  fi
  [[ -n "${PWB_WORKDIR:-}" ]] || make_workdir
  deb="${PWB_WORKDIR}/${package}-${version}_1_amd64.deb"
  url="$(posit_deb_url "${base}" "${os}" "${package}" "${version}")"
  fetch "${url}" "${deb}"
  if [[ -n "${sha256}" ]]; then
    verify_sha256 "${deb}" "${sha256}"
  else
    warn "${label} ${version} (${url}) is not pinned (image.${package}.sha256): Posit publishes no checksum; trusted on TLS alone"
  fi
  apt_install "${deb}"
  [[ -x "${PWB_ROOT}${binary}" ]] ||
    die "${label} ${version} installed but ${PWB_ROOT}${binary} is missing"
  log "installed ${label} ${version}"
}

# in_list WORD LIST...: true when WORD is one of the words in LIST.
in_list() {
  local word="$1" item
  shift
  for item in "$@"; do
    [[ "${item}" == "${word}" ]] && return 0
  done
  return 1
}

# shellcheck disable=SC2034  # used by the scripts that source this file
SEMVER_RE='^[0-9]+\.[0-9]+\.[0-9]+$'
