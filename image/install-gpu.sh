#!/usr/bin/env bash
# install-gpu.sh: NVIDIA driver, CUDA toolkit and cuDNN from NVIDIA's apt repository.
#
# Runs only with --enabled true. The official ParallelCluster AMI already carries an
# NVIDIA driver; it is kept (replacing it would break ParallelCluster's own GPU
# set-up), and the repository's driver is installed only where none is present.
# Then cuda-toolkit-<major>-<minor> and cuDNN 9 for that CUDA major. NVIDIA signs
# the repository; apt verifies every package against the cuda-keyring key.
# Safe to re-run: installed packages are skipped.
#
# Usage: install-gpu.sh --enabled true --cuda-version 12.8 --repo-os ubuntu2204
#          [--repo-base https://developer.download.nvidia.com/compute/cuda/repos]
#          [--keyring-sha256 HEX]
#   --enabled         true or false (false does nothing)
#   --cuda-version    CUDA toolkit major.minor
#   --repo-os         NVIDIA's repository name for the OS (ubuntu2204, ubuntu2404)
#   --repo-base       where NVIDIA publishes its CUDA repositories
#   --keyring-sha256  expected SHA-256 of cuda-keyring_1.1-1_all.deb
# Needs: root, curl, apt-get, dpkg, dpkg-query.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-gpu"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

KEYRING_DEB="cuda-keyring_1.1-1_all.deb"

usage() { print_header "${BASH_SOURCE[0]}"; }

install_keyring() {
  local repo="$1" sha256="$2" deb
  if [[ -n "$(deb_version cuda-keyring)" ]]; then
    log "cuda-keyring already installed"
    return 0
  fi
  make_workdir
  deb="${PWB_WORKDIR}/${KEYRING_DEB}"
  fetch "${repo}/${KEYRING_DEB}" "${deb}"
  if [[ -n "${sha256}" ]]; then
    verify_sha256 "${deb}" "${sha256}"
  else
    warn "no --keyring-sha256 given: the keyring package is trusted on TLS alone"
  fi
  dpkg -i "${deb}"
  log "installed NVIDIA's repository key"
}

install_packages() {
  local cuda="$1" major="${1%%.*}" package
  local -a wanted=("cuda-toolkit-${cuda/./-}" "cudnn9-cuda-${major}") missing=()
  if command -v nvidia-smi >/dev/null 2>&1; then
    log "an NVIDIA driver is present (nvidia-smi): keeping it"
  else
    wanted+=(cuda-drivers)
  fi
  for package in "${wanted[@]}"; do
    if [[ -n "$(deb_version "${package}")" ]]; then
      log "${package} already installed"
    else
      missing+=("${package}")
    fi
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    log "installed ${missing[*]}"
  fi
}

main() {
  local enabled="" cuda="" repo_os="" sha256=""
  local base="https://developer.download.nvidia.com/compute/cuda/repos"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --enabled) enabled="${2:-}"; shift 2 ;;
      --cuda-version) cuda="${2:-}"; shift 2 ;;
      --repo-os) repo_os="${2:-}"; shift 2 ;;
      --repo-base) base="${2:-}"; shift 2 ;;
      --keyring-sha256) sha256="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  case "${enabled}" in
    true) ;;
    false) log "GPU stack not requested: nothing to do"; return 0 ;;
    *) die "bad --enabled '${enabled}': expected true or false" ;;
  esac
  [[ "${cuda}" =~ ^1[0-9]\.[0-9]+$ ]] || die "bad CUDA version '${cuda}': expected major.minor, e.g. 12.8"
  [[ "${repo_os}" =~ ^ubuntu[0-9]{4}$ ]] || die "bad --repo-os '${repo_os}': expected e.g. ubuntu2204"
  install_keyring "${base}/${repo_os}/x86_64" "${sha256}"
  install_packages "${cuda}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
