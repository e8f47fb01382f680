#!/usr/bin/env bash
# head-node.sh: OnNodeConfigured on the head node.
#
# Puts the Workbench configuration (rendered by the toolkit, no secrets) onto shared
# storage for the login nodes, prepares what they and the compute nodes share there
# (shared-storage and audit directories, the launcher key pair, session container
# images when container sessions are on: built once here, in the background, never on
# every node), creates Workbench's own database roles (lib/database.sh: the one use of
# the databases' master passwords), and sets up Slurm controller HA when the deployment
# asks for it. The head node reads only those database secrets: the login nodes fetch
# theirs (role passwords, cookie key, licence) at boot.
#
# Usage: head-node.sh --env-uri s3://BUCKET/PREFIX/cluster/node.env
# Needs: aws CLI, openssl, psql, systemd-run and apptainer (container sessions only), all
# in the AMI; the instance role's read access to the scripts prefix and to the database
# secrets. Installs nothing.
# Safe to re-run: every step checks before it acts.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="head-node"
PWB_HOME="${PWB_HOME:-/opt/pwbcluster}"

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

parse_args() {
  ENV_URI=""
  while (($#)); do
    case "$1" in
      --env-uri) ENV_URI="${2:-}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
  done
  [[ "${ENV_URI}" =~ ^s3://[a-z0-9.-]+/.+/node\.env$ ]] || die "--env-uri s3://BUCKET/PREFIX/node.env is required"
}

# fetch_bundle: copy the bucket's cluster/ prefix (one bounded call) to
# ${PWB_HOME}/cluster, swapped in whole (files removed from the bucket go away too), and
# only if the copy is whole and of one upload: every file SHA256SUMS lists matches it,
# and no other file is there (a partial, stale or planted object stops the node). Nothing
# fetched is sourced before that. Write access to the bucket's cluster/ prefix is the
# trust boundary: ParallelCluster fetches this script itself from there, so no digest
# this script checks could protect against a writer of that prefix, and none is passed
# in the custom actions' Args (pcluster cannot update those on the head and login nodes:
# every node-file change would need a new cluster). No node role can write the prefix
# (tests/stacks/test_policies.py); only the deployer can. The same function is in
# every entry script (tests/cluster/test_bundle_integrity.py keeps the copies identical).
fetch_bundle() {
  local new="${PWB_HOME}/cluster.new" listed found
  mkdir -p "${PWB_HOME}"
  rm -rf "${new}"
  aws --cli-connect-timeout 10 --cli-read-timeout 60 s3 cp --recursive --only-show-errors \
    "${ENV_URI%/node.env}/" "${new}/" || die "cannot fetch the node scripts from ${ENV_URI%/node.env}/"
  [[ -f "${new}/SHA256SUMS" ]] || die "the bundle has no SHA256SUMS: refusing to run it"
  (cd "${new}" && sha256sum --check --strict --quiet SHA256SUMS >&2) \
    || die "a file of the bundle does not match SHA256SUMS: refusing to run it"
  listed="$(sed 's/^[0-9a-f]\{64\}  //' "${new}/SHA256SUMS" | LC_ALL=C sort)"
  found="$(cd "${new}" && find . -mindepth 1 ! -type d ! -path ./SHA256SUMS -printf '%P\n' | LC_ALL=C sort)"
  [[ "${listed}" == "${found}" ]] || die "the bundle holds files SHA256SUMS does not list: refusing to run it"
  rm -rf "${PWB_HOME}/cluster"
  mv "${new}" "${PWB_HOME}/cluster"
}

bootstrap() {
  fetch_bundle
  # shellcheck source=SCRIPTDIR/lib/common.sh
  source "${PWB_HOME}/cluster/lib/common.sh"
  # shellcheck source=SCRIPTDIR/lib/database.sh
  source "${PWB_HOME}/cluster/lib/database.sh"
  load_env "${PWB_HOME}/cluster/node.env"
  require_env WORKBENCH_SHARED_DIR
}

# service_owner: rstudio-server:rstudio-server when the AMI has that user, else root.
service_owner() {
  if getent passwd rstudio-server >/dev/null 2>&1; then
    printf 'rstudio-server:rstudio-server'
  else
    printf '%s' "${ROOT_OWNER:-root:root}"
  fi
}

# publish_workbench_config: the rendered files (fetched with the bundle) onto shared
# storage, with the modes the toolkit gave them; files no longer rendered are removed.
publish_workbench_config() {
  local staging dest path name mode
  dest="${WORKBENCH_SHARED_DIR}/etc/rstudio"
  staging="${PWB_HOME}/cluster/workbench/etc/rstudio"
  [[ -f "${staging}/rserver.conf" ]] || die "the scripts bucket holds no Workbench configuration (cluster/workbench/)"
  mkdir -p "${dest}"
  chmod 755 "${dest}"
  for path in "${staging}"/*; do
    name="$(basename "${path}")"
    mode=644
    [[ "${name}" == *database.conf ]] && mode=600
    install_file "${path}" "${dest}/${name}" "${mode}" "${ROOT_OWNER:-root:root}"
  done
  for path in "${dest}"/*; do
    name="$(basename "${path}")"
    if [[ ! -e "${staging}/${name}" ]]; then
      rm -f "${path}"
      log "removed ${path} (no longer rendered)"
    fi
  done
}

# ensure_dir DIR MODE OWNER: create DIR or fix its mode and owner.
ensure_dir() {
  local dir="$1" mode="$2" owner="$3"
  mkdir -p "${dir}"
  [[ "$(file_state "${dir}")" == "${mode} ${owner}" ]] && return 0
  chmod "${mode}" "${dir}"
  chown "${owner}" "${dir}"
  log "prepared ${dir} (${mode}, ${owner})"
}

# prepare_shared_dirs: what every login and compute node uses on shared storage.
prepare_shared_dirs() {
  local owner
  owner="$(service_owner)"
  ensure_dir "${WORKBENCH_SHARED_DIR}/shared-storage" 1777 "${ROOT_OWNER:-root:root}"
  ensure_dir "${WORKBENCH_SHARED_DIR}/audit" 750 "${owner}"
  ensure_dir "${WORKBENCH_SHARED_DIR}/containers" 755 "${ROOT_OWNER:-root:root}"
  ensure_dir "${WORKBENCH_SHARED_DIR}/keys" 700 "${ROOT_OWNER:-root:root}"
}

# launcher_keys: one launcher key pair for every login node (load balancing needs the
# same one everywhere), generated here once; root-only on shared storage, never in S3.
launcher_keys() {
  local keys="${WORKBENCH_SHARED_DIR}/keys"
  if [[ -s "${keys}/launcher.pem" && -s "${keys}/launcher.pub" ]]; then
    return 0
  fi
  (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${keys}/launcher.pem" 2>/dev/null) \
    || die "cannot generate the launcher key"
  openssl rsa -in "${keys}/launcher.pem" -pubout -out "${keys}/launcher.pub" 2>/dev/null \
    || die "cannot derive the launcher public key"
  chmod 600 "${keys}/launcher.pem"
  chmod 644 "${keys}/launcher.pub"
  log "generated the shared launcher key pair"
}

# session_image_digest OS: the pinned digest (sha256:...) of OS's session image, or nothing.
session_image_digest() {
  local entry
  for entry in ${CONTAINER_DIGESTS:-}; do
    [[ "${entry%%@*}" == "$1" ]] && { printf '%s' "${entry#*@}"; return 0; }
  done
  return 0
}

# build_container_images: r-session-complete images as Apptainer SIF files on shared
# storage, built once here in a transient unit (the head node's own configuration does
# not wait for the pull); a node with the file already skips it.
build_container_images() {
  local os sif unit ref digest
  [[ "${CONTAINER_SESSIONS:-false}" == "true" ]] || return 0
  require_env CONTAINER_IMAGES CONTAINER_TAG_VERSION
  command -v apptainer >/dev/null || die "container sessions are on but apptainer is not in the image"
  for os in ${CONTAINER_IMAGES}; do
    ref="docker://rstudio/r-session-complete:${os}-${CONTAINER_TAG_VERSION}"
    digest="$(session_image_digest "${os}")"
    [[ -z "${digest}" ]] || ref="docker://rstudio/r-session-complete@${digest}"
    sif="${WORKBENCH_SHARED_DIR}/containers/r-session-complete-${os}.sif"
    unit="pwb-build-session-image-${os}"
    if [[ -s "${sif}" ]]; then
      log "session image ${sif} present"
      continue
    fi
    if systemctl is-active --quiet "${unit}"; then
      log "session image ${os} is being built (${unit})"
      continue
    fi
    systemd-run --unit "${unit}" --collect --quiet -- /bin/sh -c \
      "apptainer build --force '${sif}.tmp' '${ref}' && mv -f '${sif}.tmp' '${sif}'" \
      || die "cannot start the build of session image ${os}"
    log "building session image ${os} from ${ref} in the background (journalctl -u ${unit})"
  done
}

# controller_ha: backup slurmctld on the login nodes (cluster/ha); the head
# runs first and publishes the shared directory the login nodes wait for.
controller_ha() {
  [[ "${HA_CONTROLLERS:-false}" == "true" ]] || return 0
  require_env HA_SHARED_DIR SLURMCTLD_TIMEOUT HA_SCALING_SUMS_URI
  # Fetched from S3 (no exec bit kept): run it through bash.
  bash "${PWB_HOME}/cluster/ha/controller-ha.sh" --role head --shared-dir "${HA_SHARED_DIR}" \
    --slurmctld-timeout "${SLURMCTLD_TIMEOUT}" --scaling-sums-uri "${HA_SCALING_SUMS_URI}" || die "controller HA setup failed on the head node"
}

# mark_published: tells login nodes the shared configuration is complete.
mark_published() {
  date -u +%Y-%m-%dT%H:%M:%SZ | install_content "${WORKBENCH_SHARED_DIR}/etc/rstudio.published" 644 "${ROOT_OWNER:-root:root}"
}

main() {
  trap 'printf "[%s] ERROR: a command failed near line %s\n" "${SCRIPT_NAME}" "${LINENO}" >&2' ERR
  parse_args "$@"
  bootstrap
  publish_workbench_config
  prepare_shared_dirs
  launcher_keys
  # Before the login nodes are told the configuration is ready: they connect as these roles.
  database_roles
  if [[ ! -f "${WORKBENCH_SHARED_DIR}/etc/rstudio.published" ]] || ((CHANGED)); then
    mark_published
  fi
  build_container_images
  controller_ha
  log "head node done (Workbench configuration on ${WORKBENCH_SHARED_DIR})"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
