#!/usr/bin/env bash
# controller-ha.sh: set up Slurm controller HA on this node (head or login node).
#
# Head node: moves the StateSaveLocation content to shared storage (stop slurmctld, copy,
# start; once), publishes ParallelCluster's resume/suspend programs and their config for
# the login nodes, installs the reconciler and its units, runs it once.
# Login node: installs the cluster munge key (when it differs), the resume/suspend
# programs published by the head, a backup slurmctld unit and its hand-back watcher, the
# reconciler and its units, and runs the reconciler once (it registers this node and
# starts the backup slurmctld).
# The reconciler (reconcile.py, installed beside) keeps the SlurmctldHost list equal to
# the live controllers afterwards, from a systemd timer on every node.
#
# Usage: controller-ha.sh --role head|login --shared-dir DIR --slurmctld-timeout SECONDS [options]
#   --role head|login      which node this is (required)
#   --shared-dir DIR       HA directory on shared storage that survives the head node
#                          (EFS), e.g. /opt/slurm/pwb-ha (required; created by the head)
#   --slurmctld-timeout SECONDS
#                          SlurmctldTimeout (cluster.ha.slurmctld_timeout) (required)
#   --slurm-etc DIR        Slurm configuration directory [/opt/slurm/etc]
#   --slurm-prefix DIR     Slurm install prefix, with bin/ and sbin/ [/opt/slurm]
#   --hostname NAME        controller name [hostname -s]
#   --address IP           controller address [source address of the default route]
#   --munge-key-src FILE   login: cluster munge key to install, or "none"
#                          [/opt/parallelcluster/shared_login_nodes/.munge/.munge.key]
#   --interval SECONDS     reconciler timer period [30]
#   --stale-after SECONDS  remove a controller silent for longer than this [120]
#   --init systemd|none    systemd: install and start units; none: no systemd (tests):
#                          slurmctld is started directly, units are still written [systemd]
#   --install-dir DIR      where reconcile.py is installed [/opt/pwb-ha]
#   --local-dir DIR        node-local state of the reconciler [/var/lib/pwb-ha]
#   --systemd-dir DIR      where units are written [/etc/systemd/system]
#   --wait SECONDS         login: how long to wait for the head's shared directory [600]
#   --handback-grace SECONDS
#                          login: the hand-back watcher (pwb-ha-handback.service) kills
#                          the local slurmctld when it was in charge and has not answered
#                          for this long (a hung hand-back to the returning head) [4]
#   --scaling-sums-uri s3://BUCKET/KEY
#                          where the head puts the sha256 list of the scaling files it
#                          published, and the login nodes read it: an S3 key only the
#                          head node's role may write (the shared directory is writable
#                          by root on every node mounting /opt/slurm) [none: the head
#                          publishes no list and login nodes install no scaling files]
#   -h, --help             print this header
#
# Needs: bash, python3 (standard library), coreutils, Slurm at --slurm-prefix, munge,
# systemd (unless --init none), the aws CLI with --scaling-sums-uri. Installs no packages;
# no network calls beyond Slurm's and that one S3 object.
# Safe to re-run: every step checks before it acts. Exit 0 when the node is configured.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="controller-ha"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly MIGRATED_MARKER=".pwb-ha-migrated"
readonly PCLUSTER_SCRIPTS="/opt/parallelcluster/scripts/slurm"
readonly PCLUSTER_PLUGIN_CONF="/etc/parallelcluster/slurm_plugin"
readonly PCLUSTER_SUDOERS="/etc/sudoers.d/99-parallelcluster-slurm"

ROLE=""
SHARED_DIR=""
SLURMCTLD_TIMEOUT=""
SLURM_ETC="/opt/slurm/etc"
SLURM_PREFIX="/opt/slurm"
NODE_NAME=""
NODE_ADDRESS=""
MUNGE_KEY_SRC="/opt/parallelcluster/shared_login_nodes/.munge/.munge.key"
MUNGE_KEY_DEST="/etc/munge/munge.key"
INTERVAL=30
STALE_AFTER=120
INIT="systemd"
INSTALL_DIR="/opt/pwb-ha"
LOCAL_DIR="/var/lib/pwb-ha"
SYSTEMD_DIR="/etc/systemd/system"
WAIT=600
HANDBACK_GRACE=4
SCALING_SUMS_URI=""
# Where the head publishes and the login nodes install the pcluster scaling programs;
# overridable for the bats tests.
SCALING_SCRIPTS="${PWB_HA_PCLUSTER_SCRIPTS:-${PCLUSTER_SCRIPTS}}"
SCALING_CONF="${PWB_HA_PCLUSTER_PLUGIN_CONF:-${PCLUSTER_PLUGIN_CONF}}"
SCALING_SUDOERS="${PWB_HA_PCLUSTER_SUDOERS:-${PCLUSTER_SUDOERS}}"

log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

parse_args() {
  while (($# > 0)); do
    case "$1" in
      --role) ROLE="${2:?--role needs a value}"; shift 2 ;;
      --shared-dir) SHARED_DIR="${2:?--shared-dir needs a value}"; shift 2 ;;
      --slurmctld-timeout) SLURMCTLD_TIMEOUT="${2:?--slurmctld-timeout needs a value}"; shift 2 ;;
      --slurm-etc) SLURM_ETC="${2:?--slurm-etc needs a value}"; shift 2 ;;
      --slurm-prefix) SLURM_PREFIX="${2:?--slurm-prefix needs a value}"; shift 2 ;;
      --hostname) NODE_NAME="${2:?--hostname needs a value}"; shift 2 ;;
      --address) NODE_ADDRESS="${2:?--address needs a value}"; shift 2 ;;
      --munge-key-src) MUNGE_KEY_SRC="${2:?--munge-key-src needs a value}"; shift 2 ;;
      --interval) INTERVAL="${2:?--interval needs a value}"; shift 2 ;;
      --stale-after) STALE_AFTER="${2:?--stale-after needs a value}"; shift 2 ;;
      --init) INIT="${2:?--init needs a value}"; shift 2 ;;
      --install-dir) INSTALL_DIR="${2:?--install-dir needs a value}"; shift 2 ;;
      --local-dir) LOCAL_DIR="${2:?--local-dir needs a value}"; shift 2 ;;
      --systemd-dir) SYSTEMD_DIR="${2:?--systemd-dir needs a value}"; shift 2 ;;
      --wait) WAIT="${2:?--wait needs a value}"; shift 2 ;;
      --handback-grace) HANDBACK_GRACE="${2:?--handback-grace needs a value}"; shift 2 ;;
      --scaling-sums-uri) SCALING_SUMS_URI="${2:?--scaling-sums-uri needs a value}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_positive() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

validate_args() {
  [[ "${ROLE}" == "head" || "${ROLE}" == "login" ]] || die "--role must be head or login"
  [[ "${SHARED_DIR}" == /* ]] || die "--shared-dir must be an absolute path"
  is_positive "${SLURMCTLD_TIMEOUT}" || die "--slurmctld-timeout must be a positive integer"
  is_positive "${INTERVAL}" || die "--interval must be a positive integer"
  is_uint "${STALE_AFTER}" || die "--stale-after must be an integer"
  ((STALE_AFTER > 2 * INTERVAL)) ||
    die "--stale-after (${STALE_AFTER}) must exceed twice --interval (${INTERVAL})"
  is_uint "${WAIT}" || die "--wait must be an integer"
  is_positive "${HANDBACK_GRACE}" || die "--handback-grace must be a positive integer"
  [[ "${INIT}" == "systemd" || "${INIT}" == "none" ]] || die "--init must be systemd or none"
  [[ -f "${SLURM_ETC}/slurm.conf" ]] || die "no slurm.conf in ${SLURM_ETC}"
  [[ -x "${SLURM_PREFIX}/sbin/slurmctld" ]] || die "no slurmctld in ${SLURM_PREFIX}/sbin"
  [[ -n "${NODE_NAME}" ]] || NODE_NAME="$(hostname -s)"
  [[ -n "${NODE_ADDRESS}" ]] || NODE_ADDRESS="$(default_address)"
  [[ "${NODE_ADDRESS}" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "cannot tell this node's address (got '${NODE_ADDRESS}'): pass --address"
}

# The source address the kernel would use for the default route: a local lookup only.
default_address() {
  ip -4 -o route get 192.0.2.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}'
}

# A key from slurm.conf as pcluster wrote it (our own include excluded), last one wins.
slurm_conf_value() {
  local key="$1"
  awk -F= -v key="${key}" 'tolower($1) == tolower(key) {v = $2} END {print v}' \
    "${SLURM_ETC}/slurm.conf" | awk '{print $1}'
}

slurm_user() {
  local user
  user="$(slurm_conf_value SlurmUser)"
  printf '%s\n' "${user:-slurm}"
}

slurmctld_unit() {
  if [[ "${ROLE}" == "head" ]]; then printf 'slurmctld.service\n'; else printf 'pwb-slurmctld.service\n'; fi
}

slurmctld_pidfile() {
  local pidfile
  pidfile="$(slurm_conf_value SlurmctldPidFile)"
  printf '%s\n' "${pidfile:-/var/run/slurmctld.pid}"
}

# Stops the local slurmctld (head, before its state moves); bounded: a primary can hang
# on SIGTERM, so it is killed after 30 s.
stop_slurmctld() {
  local pidfile pid waited=0
  if [[ "${INIT}" == "systemd" ]]; then
    timeout 60 systemctl stop slurmctld.service || die "could not stop slurmctld.service"
    return 0
  fi
  pidfile="$(slurmctld_pidfile)"
  [[ -f "${pidfile}" ]] || return 0
  pid="$(<"${pidfile}")"
  [[ -r "/proc/${pid}/comm" && "$(<"/proc/${pid}/comm")" == "slurmctld" ]] || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  while [[ -e "/proc/${pid}" ]] && ((waited < 300)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if [[ -e "/proc/${pid}" ]]; then
    warn "slurmctld ${pid} ignored SIGTERM for 30 s: killing it"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
}

prepare_shared_dir() {
  local user
  user="$(slurm_user)"
  id "${user}" >/dev/null 2>&1 || die "SlurmUser ${user} does not exist on this node"
  mkdir -p "${SHARED_DIR}/state" "${SHARED_DIR}/controllers" "${SHARED_DIR}/scaling"
  chown "${user}:" "${SHARED_DIR}/state"
  chmod 0755 "${SHARED_DIR}" "${SHARED_DIR}/controllers" "${SHARED_DIR}/scaling"
}

# Once: copy the head's local StateSaveLocation onto shared storage while slurmctld is
# stopped, so no job, node or reservation state is lost when the location changes.
migrate_state() {
  local local_state
  if [[ -e "${SHARED_DIR}/state/${MIGRATED_MARKER}" ]]; then
    log "state already on shared storage (${SHARED_DIR}/state)"
    return 0
  fi
  local_state="$(slurm_conf_value StateSaveLocation)"
  stop_slurmctld
  if [[ -n "${local_state}" && -d "${local_state}" && "${local_state}" != "${SHARED_DIR}/state" ]]; then
    log "copying ${local_state} to ${SHARED_DIR}/state"
    cp -a "${local_state}/." "${SHARED_DIR}/state/"
  fi
  touch "${SHARED_DIR}/state/${MIGRATED_MARKER}"
}

# scaling_sums DIR: sha256sum lines of every file under DIR, paths relative to it.
scaling_sums() {
  (cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# s3_cp SRC DEST: one bounded S3 copy.
s3_cp() {
  aws --cli-connect-timeout 10 --cli-read-timeout 60 s3 cp --only-show-errors "$1" "$2"
}

# Head: publish what a login-node controller needs to run ResumeProgram/SuspendProgram,
# and their sha256 list where only this node's role may write it (--scaling-sums-uri).
publish_scaling() {
  local dest="${SHARED_DIR}/scaling" sums
  if [[ ! -d "${SCALING_SCRIPTS}" ]]; then
    warn "no ${SCALING_SCRIPTS}: backups will schedule but cannot resume or suspend nodes"
    return 0
  fi
  # A fresh tree each time: nothing planted in an earlier one stays.
  rm -rf "${dest:?}/scripts" "${dest}/plugin-conf" "${dest}/sudoers"
  mkdir -p "${dest}/scripts" "${dest}/plugin-conf"
  cp -a "${SCALING_SCRIPTS}/." "${dest}/scripts/"
  if [[ -d "${SCALING_CONF}" ]]; then
    cp -a "${SCALING_CONF}/." "${dest}/plugin-conf/"
  fi
  if [[ -f "${SCALING_SUDOERS}" ]]; then
    cp -a "${SCALING_SUDOERS}" "${dest}/sudoers"
  fi
  if [[ -z "${SCALING_SUMS_URI}" ]]; then
    warn "no --scaling-sums-uri: login nodes will not install the scaling programs"
    return 0
  fi
  # The list is made from the head's own files, not from the shared copy.
  sums="$(mktemp)"
  {
    scaling_sums "${SCALING_SCRIPTS}" | sed 's|  |  scripts/|'
    if [[ -d "${SCALING_CONF}" ]]; then scaling_sums "${SCALING_CONF}" | sed 's|  |  plugin-conf/|'; fi
    if [[ -f "${SCALING_SUDOERS}" ]]; then
      printf '%s  sudoers\n' "$(sha256sum <"${SCALING_SUDOERS}" | cut -d' ' -f1)"
    fi
  } >"${sums}"
  s3_cp "${sums}" "${SCALING_SUMS_URI}" || {
    rm -f "${sums}"
    die "cannot publish the scaling files' digests to ${SCALING_SUMS_URI}"
  }
  rm -f "${sums}"
  log "published resume/suspend programs to ${dest}, their digests to ${SCALING_SUMS_URI}"
}

# Login: install what the head published, at the paths slurm.conf names, only when the
# files match the digests the head put in S3: the shared directory is writable by root on
# any node mounting /opt/slurm (compute nodes too), and these run as root here. The files
# are copied to local disk first and checked there, so nothing changes between check and
# install.
install_scaling() {
  local src="${SHARED_DIR}/scaling" stage="${LOCAL_DIR}/scaling.new" listed found
  if [[ ! -d "${src}/scripts" ]]; then
    warn "head published no resume/suspend programs: this backup cannot scale compute nodes"
    return 0
  fi
  [[ -n "${SCALING_SUMS_URI}" ]] \
    || die "no --scaling-sums-uri: the published scaling files cannot be checked, not installed"
  rm -rf "${stage}"
  mkdir -p "${stage}/files"
  chmod 0700 "${stage}"
  cp -r "${src}/." "${stage}/files/"
  s3_cp "${SCALING_SUMS_URI}" "${stage}/SHA256SUMS" \
    || die "cannot read the scaling files' digests from ${SCALING_SUMS_URI}: not installed"
  (cd "${stage}/files" && sha256sum --check --strict --quiet ../SHA256SUMS >&2) \
    || die "a published scaling file does not match the head's digests: not installed"
  listed="$(sed 's/^[0-9a-f]\{64\}  //' "${stage}/SHA256SUMS" | LC_ALL=C sort)"
  found="$(cd "${stage}/files" && find . -mindepth 1 ! -type d -printf '%P\n' | LC_ALL=C sort)"
  [[ "${listed}" == "${found}" ]] \
    || die "the shared scaling directory holds files the head did not publish: not installed"
  mkdir -p "${SCALING_SCRIPTS}" "${SCALING_CONF}"
  cp -r "${stage}/files/scripts/." "${SCALING_SCRIPTS}/"
  if [[ -d "${stage}/files/plugin-conf" ]]; then
    cp -r "${stage}/files/plugin-conf/." "${SCALING_CONF}/"
  fi
  if [[ -f "${stage}/files/sudoers" ]]; then
    if command -v visudo >/dev/null 2>&1 && ! visudo -cqf "${stage}/files/sudoers"; then
      warn "published sudoers file does not parse: not installed"
    else
      install -m 0440 "${stage}/files/sudoers" "${SCALING_SUDOERS}"
    fi
  fi
  rm -rf "${stage}"
  log "installed resume/suspend programs from ${src}, checked against ${SCALING_SUMS_URI}"
}

# Login: slurmctld runs as SlurmUser and must be able to write its log file here (the
# head node has it from ParallelCluster; a login node never ran slurmctld).
prepare_local_files() {
  local user logfile
  user="$(slurm_user)"
  logfile="$(slurm_conf_value SlurmctldLogFile)"
  logfile="${logfile:-/var/log/slurmctld.log}"
  mkdir -p "$(dirname "${logfile}")"
  [[ -e "${logfile}" ]] || touch "${logfile}"
  chown "${user}:" "${logfile}"
  chmod 0640 "${logfile}"
}

# Login: ParallelCluster copies the key too; re-check so a rotated key is picked up.
install_munge_key() {
  [[ "${MUNGE_KEY_SRC}" == "none" ]] && return 0
  [[ -f "${MUNGE_KEY_SRC}" ]] || die "munge key ${MUNGE_KEY_SRC} not found"
  if [[ -f "${MUNGE_KEY_DEST}" ]] && cmp -s "${MUNGE_KEY_SRC}" "${MUNGE_KEY_DEST}"; then
    log "munge key already installed"
    return 0
  fi
  install -o munge -g munge -m 0400 "${MUNGE_KEY_SRC}" "${MUNGE_KEY_DEST}"
  if [[ "${INIT}" == "systemd" ]]; then
    timeout 60 systemctl restart munge.service || die "munge did not restart"
  fi
  log "installed munge key"
}

wait_for_head() {
  local waited=0
  until [[ -e "${SHARED_DIR}/state/${MIGRATED_MARKER}" ]]; do
    ((waited < WAIT)) || die "head did not set up ${SHARED_DIR} within ${WAIT} s"
    sleep 1
    waited=$((waited + 1))
  done
}

install_reconciler() {
  mkdir -p "${INSTALL_DIR}" "${LOCAL_DIR}"
  install -m 0755 "${SCRIPT_DIR}/reconcile.py" "${INSTALL_DIR}/reconcile.py"
  # JSON written by python3 from argv: no value is ever pasted into text.
  python3 - "${LOCAL_DIR}/reconcile.json" "${ROLE}" "${NODE_NAME}" "${NODE_ADDRESS}" \
    "${SHARED_DIR}" "${SLURM_ETC}" "${SLURM_PREFIX}" "${SLURMCTLD_TIMEOUT}" "${STALE_AFTER}" \
    "${INIT}" "$(slurmctld_unit)" "${LOCAL_DIR}" <<'PY'
import json, sys
keys = ["role", "hostname", "address", "shared_dir", "slurm_etc", "slurm_prefix",
        "slurmctld_timeout", "stale_after", "init", "slurmctld_unit", "local_dir"]
path, values = sys.argv[1], sys.argv[2:]
with open(path, "w") as handle:
    json.dump(dict(zip(keys, values)), handle, indent=2, sort_keys=True)
    handle.write("\n")
PY
}

write_unit() {
  local name="$1" content="$2"
  mkdir -p "${SYSTEMD_DIR}"
  if [[ -f "${SYSTEMD_DIR}/${name}" ]] && [[ "$(<"${SYSTEMD_DIR}/${name}")" == "${content}" ]]; then
    return 0
  fi
  printf '%s\n' "${content}" >"${SYSTEMD_DIR}/${name}"
  log "wrote ${SYSTEMD_DIR}/${name}"
}

write_units() {
  local env_line="" reconcile
  [[ "${SLURM_ETC}" == "/opt/slurm/etc" ]] || env_line="Environment=SLURM_CONF=${SLURM_ETC}/slurm.conf"
  reconcile="/usr/bin/python3 ${INSTALL_DIR}/reconcile.py --config ${LOCAL_DIR}/reconcile.json"
  write_unit pwb-ha-reconcile.service "[Unit]
Description=pwb-ha: keep the SlurmctldHost list equal to the live controllers
After=network-online.target remote-fs.target munge.service
Wants=network-online.target

[Service]
Type=oneshot
${env_line}
ExecStart=${reconcile}
TimeoutStartSec=300"
  write_unit pwb-ha-reconcile.timer "[Unit]
Description=pwb-ha: run the controller reconciler every ${INTERVAL} s

[Timer]
OnBootSec=10
OnUnitActiveSec=${INTERVAL}
AccuracySec=1

[Install]
WantedBy=timers.target"
  if [[ "${ROLE}" == "head" ]]; then
    write_unit pwb-ha-reconcile.path "[Unit]
Description=pwb-ha: reassert controllers when ParallelCluster rewrites the Slurm config

[Path]
PathChanged=${SLURM_ETC}/slurm_parallelcluster.conf
PathChanged=${SLURM_ETC}/slurm.conf
Unit=pwb-ha-reconcile.service

[Install]
WantedBy=multi-user.target"
  else
    write_unit pwb-slurmctld.service "[Unit]
Description=Slurm backup controller (pwb-ha)
After=network-online.target remote-fs.target munge.service
Wants=network-online.target
ConditionPathExists=${SLURM_ETC}/slurm.conf

[Service]
Type=simple
${env_line}
ExecStart=${SLURM_PREFIX}/sbin/slurmctld -D -s
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=5
LimitNOFILE=131072
TasksMax=infinity

[Install]
WantedBy=multi-user.target"
    # The hand-back watcher: a backup that hangs while handing control back to the head
    # (REQUEST_CONTROL) is killed within seconds, not at the next timer tick.
    write_unit pwb-ha-handback.service "[Unit]
Description=pwb-ha: kill a backup slurmctld that hangs handing control back
After=pwb-slurmctld.service

[Service]
Type=simple
${env_line}
ExecStart=${reconcile} --watch --watch-grace ${HANDBACK_GRACE}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target"
  fi
}

enable_units() {
  local units=(pwb-ha-reconcile.timer)
  [[ "${INIT}" == "systemd" ]] || return 0
  timeout 60 systemctl daemon-reload || die "systemctl daemon-reload failed"
  if [[ "${ROLE}" == "head" ]]; then
    units+=(pwb-ha-reconcile.path)
  else
    timeout 60 systemctl enable pwb-slurmctld.service || die "could not enable pwb-slurmctld"
    units+=(pwb-ha-handback.service)
  fi
  timeout 60 systemctl enable --now "${units[@]}" || die "could not enable ${units[*]}"
}

run_reconciler() {
  log "running the reconciler once"
  python3 "${INSTALL_DIR}/reconcile.py" --config "${LOCAL_DIR}/reconcile.json" >/dev/null ||
    die "reconciler failed (see messages above)"
}

main() {
  parse_args "$@"
  validate_args
  log "role ${ROLE}: ${NODE_NAME} (${NODE_ADDRESS}), shared dir ${SHARED_DIR}"
  if [[ "${ROLE}" == "head" ]]; then
    prepare_shared_dir
    migrate_state
    publish_scaling
  else
    wait_for_head
    install_munge_key
    prepare_local_files
    install_scaling
  fi
  install_reconciler
  write_units
  enable_units
  run_reconciler
  log "controller HA configured on ${NODE_NAME}"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
