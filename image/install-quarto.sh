#!/usr/bin/env bash
# install-quarto.sh: install the Quarto CLI into /opt/quarto/<version>.
#
# Workbench bundles a Quarto for RStudio sessions; this one serves VS Code, Jupyter
# and batch jobs, linked into /usr/local/bin/quarto. The tarball is checked against
# the checksums file Quarto publishes with each release; a pin (--sha256, from the
# config) must agree with it, so a release whose files were replaced together is caught
# too. Safe to re-run: an
# installed version is kept and the link changes only when it differs.
#
# Usage: install-quarto.sh --version 1.10.20
#          [--url-base https://github.com/quarto-dev/quarto-cli/releases/download] [--sha256 HEX]
#   --version   Quarto version (x.y.z)
#   --sha256    optional pin of the tarball's SHA-256 (must agree with the published one)
#   --url-base  where Quarto publishes its releases (v<version>/ below it)
# Needs: root, curl, tar, sha256sum.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-quarto"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

usage() { print_header "${BASH_SOURCE[0]}"; }

install_quarto() {
  local version="$1" base="$2" pinned="$3" dest tarball sums expected name
  dest="${PWB_ROOT}/opt/quarto/${version}"
  if [[ -x "${dest}/bin/quarto" ]]; then
    log "Quarto ${version} already installed"
    return 0
  fi
  make_workdir
  name="quarto-${version}-linux-amd64.tar.gz"
  tarball="${PWB_WORKDIR}/${name}"
  sums="${PWB_WORKDIR}/quarto-${version}-checksums.txt"
  fetch "${base}/v${version}/${name}" "${tarball}"
  fetch "${base}/v${version}/quarto-${version}-checksums.txt" "${sums}"
  expected="$(expected_sha256 "${name}" "$(published_sha256 "${sums}" "${name}")" "${pinned}")"
  verify_sha256 "${tarball}" "${expected}"
  mkdir -p "${dest}"
  tar -xzf "${tarball}" -C "${dest}" --strip-components=1
  [[ -x "${dest}/bin/quarto" ]] || die "the Quarto archive has no bin/quarto"
  log "installed Quarto ${version}"
}

main() {
  local version="" sha256="" base="https://github.com/quarto-dev/quarto-cli/releases/download"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --version) version="${2:-}"; shift 2 ;;
      --url-base) base="${2:-}"; shift 2 ;;
      --sha256) sha256="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ "${version}" =~ ${SEMVER_RE} ]] || die "bad Quarto version '${version}': expected x.y.z"
  [[ -z "${sha256}" || "${sha256}" =~ ^[0-9a-f]{64}$ ]] || die "bad --sha256 '${sha256}'"
  install_quarto "${version}" "${base}" "${sha256}"
  link_if_needed "/opt/quarto/${version}/bin/quarto" "${PWB_ROOT}/usr/local/bin/quarto"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
