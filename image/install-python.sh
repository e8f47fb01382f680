#!/usr/bin/env bash
# install-python.sh: install several Python versions side by side from Posit's builds.
#
# Each version goes to /opt/python/<version> (Posit's .deb layout); the default one
# is linked into /usr/local/bin as python, python3, pip and pip3. Scripts of the OS
# use /usr/bin/python3 by absolute path, so they keep the system Python. Safe to
# re-run: installed versions are skipped, links change only when they differ.
#
# Usage: install-python.sh --versions "3.12.11 3.11.13" --default 3.12.11
#          --os ubuntu-2204 [--sha256 PINS] [--url-base https://cdn.posit.co/python]
#   --versions  space-separated Python versions (x.y.z)
#   --default   the version linked into /usr/local/bin (must be in --versions)
#   --os        Posit's platform name (ubuntu-2204, ubuntu-2404)
#   --url-base  where Posit publishes the Python builds
#   --sha256    optional pins "3.12.11=HEX ..." (image.python.sha256): a pinned package must
#               match before it is installed; an unpinned one is installed with a warning
# Posit publishes no checksums for these packages, so only a pin can catch a changed one.
# Needs: root, curl, apt-get.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-python"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

usage() { print_header "${BASH_SOURCE[0]}"; }

python_url() {
  posit_deb_url "$1" "$2" python "$3"
}

install_python_version() {
  install_posit_build Python python "$1" "$2" "$3" "/opt/python/${1}/bin/python3" "$(pin_for "$1" "$4")"
}

link_default_python() {
  local version="$1" tool
  for tool in python python3; do
    link_if_needed "/opt/python/${version}/bin/python3" "${PWB_ROOT}/usr/local/bin/${tool}"
  done
  for tool in pip pip3; do
    link_if_needed "/opt/python/${version}/bin/pip3" "${PWB_ROOT}/usr/local/bin/${tool}"
  done
}

main() {
  local versions="" default="" os="" pins="" base="https://cdn.posit.co/python" version
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --versions) versions="${2:-}"; shift 2 ;;
      --default) default="${2:-}"; shift 2 ;;
      --os) os="${2:-}"; shift 2 ;;
      --url-base) base="${2:-}"; shift 2 ;;
      --sha256) pins="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  local -a list
  read -r -a list <<<"${versions}"
  [[ ${#list[@]} -gt 0 ]] || die "no Python versions given (--versions \"3.12.11 3.11.13\")"
  for version in "${list[@]}"; do
    [[ "${version}" =~ ${SEMVER_RE} ]] || die "bad Python version '${version}': expected x.y.z"
  done
  in_list "${default}" "${list[@]}" ||
    die "default Python version '${default}' is not one of: ${list[*]}"
  [[ "${os}" =~ ^ubuntu-[0-9]{4}$ ]] || die "bad --os '${os}': expected e.g. ubuntu-2204"
  pin_for "" "${pins}" >/dev/null # every pin well-formed, checked here and not in a subshell
  for version in "${list[@]}"; do
    install_python_version "${version}" "${os}" "${base}" "${pins}"
  done
  link_default_python "${default}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
