#!/usr/bin/env bash
# install-image.sh: build-image entry; installs every component of the custom AMI.
#
# Reads the versions and download locations from an env file that the image stage
# writes (KEY=VALUE lines; parsed, never sourced or evaluated), then runs the
# component scripts beside it in order: Workbench, the RDS CA bundle (Workbench's
# database.conf verifies the database against it), R, Python, Jupyter (in the default
# Python), Quarto, Apptainer, GPU stack, then a check that the image carries what the
# node scripts use. Nothing is installed at node boot afterwards. Safe to re-run:
# every component skips what is already in place.
#
# Usage: install-image.sh --env-file image.env [--only COMPONENT]
#   --env-file  the env file written by the image stage
#   --only      run one component (workbench, rds-ca, r, python, jupyter, quarto,
#               apptainer, gpu, verify)
# Needs: root, bash, and what each component script lists.

set -o errexit -o nounset -o pipefail

# shellcheck disable=SC2034  # read by log/warn/die in common.sh
SCRIPT_NAME="install-image"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "${HERE}/common.sh"

COMPONENTS=(workbench rds-ca r python jupyter quarto apptainer gpu verify)
REQUIRED_KEYS=(
  POSIT_OS UBUNTU_CODENAME NVIDIA_REPO_OS
  WORKBENCH_VERSION WORKBENCH_URL_BASE RDS_CA_URL
  R_VERSIONS R_DEFAULT R_URL_BASE
  PYTHON_VERSIONS PYTHON_DEFAULT PYTHON_URL_BASE
  JUPYTERLAB_VERSION PWB_JUPYTERLAB_VERSION
  QUARTO_VERSION QUARTO_URL_BASE
  APPTAINER_VERSION APPTAINER_URL_BASE
  GPU_ENABLED CUDA_VERSION CUDA_REPO_BASE
)
declare -A ENV=()

usage() { print_header "${BASH_SOURCE[0]}"; }

# read_env FILE: fill ENV from KEY=VALUE lines; comments and blank lines ignored.
read_env() {
  local file="$1" line key value number=0
  [[ -r "${file}" ]] || die "env file not readable: ${file}"
  while IFS= read -r line || [[ -n "${line}" ]]; do
    number=$((number + 1))
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    [[ "${line}" == *=* ]] || die "${file}:${number}: expected KEY=VALUE"
    key="${line%%=*}"
    value="${line#*=}"
    [[ "${key}" =~ ^[A-Z][A-Z0-9_]*$ ]] || die "${file}:${number}: bad key '${key}'"
    ENV["${key}"]="${value}"
  done <"${file}"
  for key in "${REQUIRED_KEYS[@]}"; do
    [[ -n "${ENV[${key}]+set}" ]] || die "${file}: missing ${key}"
  done
}

env_or_empty() { printf '%s' "${ENV[$1]:-}"; }

run_component() {
  local name="$1" started
  local -a argv
  case "${name}" in
    workbench)
      argv=(install-workbench.sh --version "${ENV[WORKBENCH_VERSION]}"
        --codename "${ENV[UBUNTU_CODENAME]}" --url-base "${ENV[WORKBENCH_URL_BASE]}"
        --sha256 "$(env_or_empty WORKBENCH_SHA256)") ;;
    rds-ca)
      argv=(install-rds-ca.sh --url "${ENV[RDS_CA_URL]}" --sha256 "$(env_or_empty RDS_CA_SHA256)") ;;
    r)
      argv=(install-r.sh --versions "${ENV[R_VERSIONS]}" --default "${ENV[R_DEFAULT]}"
        --os "${ENV[POSIT_OS]}" --url-base "${ENV[R_URL_BASE]}" --sha256 "$(env_or_empty R_SHA256)") ;;
    python)
      argv=(install-python.sh --versions "${ENV[PYTHON_VERSIONS]}"
        --default "${ENV[PYTHON_DEFAULT]}" --os "${ENV[POSIT_OS]}"
        --url-base "${ENV[PYTHON_URL_BASE]}" --sha256 "$(env_or_empty PYTHON_SHA256)") ;;
    jupyter)
      argv=(install-jupyter.sh --python "${ENV[PYTHON_DEFAULT]}"
        --jupyterlab-version "${ENV[JUPYTERLAB_VERSION]}"
        --extension-version "${ENV[PWB_JUPYTERLAB_VERSION]}"
        --requirements "${HERE}/requirements-jupyter.txt"
        --index-url "$(env_or_empty PYPI_INDEX_URL)") ;;
    quarto)
      argv=(install-quarto.sh --version "${ENV[QUARTO_VERSION]}"
        --url-base "${ENV[QUARTO_URL_BASE]}" --sha256 "$(env_or_empty QUARTO_SHA256)") ;;
    apptainer)
      argv=(install-apptainer.sh --version "${ENV[APPTAINER_VERSION]}"
        --url-base "${ENV[APPTAINER_URL_BASE]}" --sha256 "$(env_or_empty APPTAINER_SHA256)") ;;
    gpu)
      argv=(install-gpu.sh --enabled "${ENV[GPU_ENABLED]}" --cuda-version "${ENV[CUDA_VERSION]}"
        --repo-os "${ENV[NVIDIA_REPO_OS]}" --repo-base "${ENV[CUDA_REPO_BASE]}"
        --keyring-sha256 "$(env_or_empty CUDA_KEYRING_SHA256)"
        --key-fingerprint "$(env_or_empty CUDA_REPO_KEY_FINGERPRINT)") ;;
    verify)
      argv=(verify-image.sh --r-versions "${ENV[R_VERSIONS]}"
        --python-versions "${ENV[PYTHON_VERSIONS]}" --python-default "${ENV[PYTHON_DEFAULT]}") ;;
    *) die "unknown component '${name}': expected one of ${COMPONENTS[*]}" ;;
  esac
  started="${SECONDS}"
  log "component ${name}: start"
  bash "${HERE}/${argv[0]}" "${argv[@]:1}" || die "component ${name} failed"
  log "component ${name}: done in $((SECONDS - started)) s"
}

main() {
  local env_file="" only="" name
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --env-file) env_file="${2:-}"; shift 2 ;;
      --only) only="${2:-}"; shift 2 ;;
      -h | --help) usage; return 0 ;;
      *) usage; die "unknown argument: $1" ;;
    esac
  done
  [[ -n "${env_file}" ]] || die "--env-file is required"
  read_env "${env_file}"
  if [[ -n "${only}" ]]; then
    in_list "${only}" "${COMPONENTS[@]}" || die "unknown component '${only}': expected one of ${COMPONENTS[*]}"
    run_component "${only}"
    return 0
  fi
  for name in "${COMPONENTS[@]}"; do
    run_component "${name}"
  done
  log "all components installed"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
