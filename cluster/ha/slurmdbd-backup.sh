#!/usr/bin/env bash
# slurmdbd-backup.sh: run a backup slurmdbd on this login node, so Slurm accounting
# keeps recording when the head node (ParallelCluster's slurmdbd, DbdHost) is gone.
#
# ParallelCluster (Scheduling.SlurmSettings.Database) runs slurmdbd on the head node only,
# with slurmdbd.conf and slurm_parallelcluster_slurmdbd.conf in /opt/slurm/etc (shared
# storage). This script, on a login node that is also a backup slurmctld (controller-ha.sh):
#   1. claims the one backup slot (Slurm has a single DbdBackupHost and a single
#      AccountingStorageBackupHost): free, already ours, or held by a login node whose
#      controller heartbeat is older than --stale-after; otherwise it does nothing;
#   2. writes a node-local slurmdbd.conf (0600, SlurmUser) from the head's settings
#      (DbdHost, DbdPort, Storage*), DbdBackupHost=this node, and StoragePass read from
#      the database's password secret in Secrets Manager, the call ParallelCluster's
#      update_slurm_database_password.sh makes; the password is never in argv or a log;
#   3. writes pwb_ha_accounting.conf (AccountingStorageBackupHost=this node) in the Slurm
#      etc directory; reconcile.py includes it from pwb_ha.conf, so every slurmctld sends
#      accounting to this node's slurmdbd when the head's does not answer;
#   4. starts slurmdbd (systemd unit pwb-slurmdbd.service, or directly with --init none).
# A backup slurmdbd (DbdBackupHost) stands by while the primary answers and takes over
# when it does not (slurmdbd.conf(5)); both use the same database (RDS).
#
# Usage: slurmdbd-backup.sh --shared-dir DIR --password-secret-arn ARN --region REGION [options]
#   --shared-dir DIR       HA directory on shared storage (controller-ha.sh's) (required)
#   --password-secret-arn ARN
#                          the accounting database's password secret, the one
#                          Scheduling.SlurmSettings.Database.PasswordSecretArn names (required)
#   --region REGION        the secret's region (required)
#   --slurm-etc DIR        Slurm configuration directory (shared) [/opt/slurm/etc]
#   --slurm-prefix DIR     Slurm install prefix, with sbin/slurmdbd [/opt/slurm]
#   --hostname NAME        this node's name, as `hostname -s` prints it [hostname -s]
#   --conf-dir DIR         node-local directory for this slurmdbd's slurmdbd.conf
#                          [/etc/pwb-ha/slurmdbd]
#   --run-dir DIR          where its pid and log files go [/var/log/pwb-ha]
#   --stale-after SECONDS  take the slot from a holder silent for longer than this [120]
#   --init systemd|none    systemd: write and start pwb-slurmdbd.service; none: start
#                          slurmdbd directly (tests) [systemd]
#   --systemd-dir DIR      where the unit is written [/etc/systemd/system]
#   -h, --help             print this header
#
# Needs: bash, coreutils, util-linux (flock), Slurm's slurmdbd at --slurm-prefix, the aws
# CLI and secretsmanager:GetSecretValue on the secret. Installs no packages.
# Safe to re-run: it rewrites the files only when they differ and restarts slurmdbd then.

set -o errexit -o nounset -o pipefail

readonly SCRIPT_NAME="slurmdbd-backup"
readonly SLOT_FILE="dbd-backup"
readonly ACCOUNTING_CONF="pwb_ha_accounting.conf"

SHARED_DIR=""
SECRET_ARN=""
REGION=""
SLURM_ETC="/opt/slurm/etc"
SLURM_PREFIX="/opt/slurm"
NODE_NAME=""
CONF_DIR="/etc/pwb-ha/slurmdbd"
RUN_DIR="/var/log/pwb-ha"
STALE_AFTER=120
INIT="systemd"
SYSTEMD_DIR="/etc/systemd/system"
TEMP_FILES=()

log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
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
      --shared-dir) SHARED_DIR="${2:?--shared-dir needs a value}"; shift 2 ;;
      --password-secret-arn) SECRET_ARN="${2:?--password-secret-arn needs a value}"; shift 2 ;;
      --region) REGION="${2:?--region needs a value}"; shift 2 ;;
      --slurm-etc) SLURM_ETC="${2:?--slurm-etc needs a value}"; shift 2 ;;
      --slurm-prefix) SLURM_PREFIX="${2:?--slurm-prefix needs a value}"; shift 2 ;;
      --hostname) NODE_NAME="${2:?--hostname needs a value}"; shift 2 ;;
      --conf-dir) CONF_DIR="${2:?--conf-dir needs a value}"; shift 2 ;;
      --run-dir) RUN_DIR="${2:?--run-dir needs a value}"; shift 2 ;;
      --stale-after) STALE_AFTER="${2:?--stale-after needs a value}"; shift 2 ;;
      --init) INIT="${2:?--init needs a value}"; shift 2 ;;
      --systemd-dir) SYSTEMD_DIR="${2:?--systemd-dir needs a value}"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
}

validate_args() {
  [[ "${SHARED_DIR}" == /* ]] || die "--shared-dir must be an absolute path"
  [[ "${SECRET_ARN}" == arn:*:secretsmanager:* ]] ||
    die "--password-secret-arn must be a Secrets Manager ARN (got '${SECRET_ARN}')"
  [[ -n "${REGION}" ]] || die "--region is required"
  [[ "${STALE_AFTER}" =~ ^[1-9][0-9]*$ ]] || die "--stale-after must be a positive integer"
  [[ "${INIT}" == "systemd" || "${INIT}" == "none" ]] || die "--init must be systemd or none"
  [[ -n "${NODE_NAME}" ]] || NODE_NAME="$(hostname -s)"
  [[ -x "${SLURM_PREFIX}/sbin/slurmdbd" ]] || die "no slurmdbd in ${SLURM_PREFIX}/sbin"
  [[ -d "${SHARED_DIR}/controllers" ]] ||
    die "no ${SHARED_DIR}/controllers: run controller-ha.sh (controller HA) first"
  [[ -f "${SLURM_ETC}/slurmdbd.conf" && -f "${SLURM_ETC}/slurm_parallelcluster_slurmdbd.conf" ]] ||
    die "no slurmdbd.conf or slurm_parallelcluster_slurmdbd.conf in ${SLURM_ETC}: Slurm accounting (SlurmSettings.Database) is not enabled on this cluster"
}

# conf_value FILE KEY: the last KEY=value of a Slurm-style file (case-insensitive key).
# Never called for StoragePass: the head's password line is not read here at all.
conf_value() {
  awk -v key="$2" '
    { k = $0; sub(/[[:space:]]*=.*/, "", k); sub(/^[[:space:]]+/, "", k) }
    tolower(k) == tolower(key) { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]].*/, "", v) }
    END { print v }' "$1"
}

# head_value KEY: from slurm_parallelcluster_slurmdbd.conf (pcluster's), else slurmdbd.conf.
head_value() {
  local value
  value="$(conf_value "${SLURM_ETC}/slurm_parallelcluster_slurmdbd.conf" "$1")"
  [[ -n "${value}" ]] || value="$(conf_value "${SLURM_ETC}/slurmdbd.conf" "$1")"
  printf '%s\n' "${value}"
}

slurm_user() {
  local user
  user="$(head_value SlurmUser)"
  printf '%s\n' "${user:-slurm}"
}

# claim_slot: prints "mine" when this node holds the backup slot (now), else the holder.
claim_slot() {
  local slot="${SHARED_DIR}/${SLOT_FILE}" holder="" beat age
  exec 9>>"${slot}.lock"
  flock -w 60 9 || die "cannot lock ${slot}.lock within 60 s"
  [[ -f "${slot}" ]] && holder="$(<"${slot}")"
  if [[ -n "${holder}" && "${holder}" != "${NODE_NAME}" ]]; then
    beat="${SHARED_DIR}/controllers/${holder}.json"
    age=$(($(date +%s) - $(stat -c %Y "${beat}" 2>/dev/null || echo 0)))
    if ((age <= STALE_AFTER)); then
      flock -u 9
      printf '%s\n' "${holder}"
      return 0
    fi
    log "backup slurmdbd slot held by ${holder}, silent for ${age} s: taking it"
  fi
  printf '%s\n' "${NODE_NAME}" >"${slot}.new"
  mv -f "${slot}.new" "${slot}"
  flock -u 9
  printf 'mine\n'
}

# read_password: the secret's value, as update_slurm_database_password.sh reads it; on
# stdout only (captured by the caller), never in argv or a log line.
read_password() {
  aws --cli-connect-timeout 10 --cli-read-timeout 30 secretsmanager get-secret-value \
    --secret-id "${SECRET_ARN}" --region "${REGION}" --query SecretString --output text
}

# render_conf PASSWORD_FILE: the local slurmdbd.conf on stdout, the password from a file
# (slurmdbd.conf(5): '#' starts a comment unless escaped as '\#').
render_conf() {
  local key value
  printf '# Managed by pwb-ha (cluster/ha/slurmdbd-backup.sh): the backup slurmdbd.\n'
  printf '# The head node runs the primary (DbdHost); this node stands by (DbdBackupHost).\n'
  for key in AuthType AuthInfo DbdHost DbdPort SlurmUser StorageType StorageHost StoragePort \
    StorageLoc StorageUser; do
    value="$(head_value "${key}")"
    [[ -n "${value}" ]] && printf '%s=%s\n' "${key}" "${value}"
  done
  printf 'DbdBackupHost=%s\n' "${NODE_NAME}"
  printf 'LogFile=%s/slurmdbd.log\nPidFile=%s/slurmdbd.pid\n' "${RUN_DIR}" "${RUN_DIR}"
  value="$(<"$1")"
  printf 'StoragePass=%s\n' "${value//#/\\#}"
}

# write_conf: returns 0 when the file changed.
write_conf() {
  local user password new changed=1
  user="$(slurm_user)"
  [[ -n "$(head_value DbdHost)" ]] || die "no DbdHost in ${SLURM_ETC}/slurm_parallelcluster_slurmdbd.conf"
  umask 077
  mkdir -p "${CONF_DIR}" "${RUN_DIR}"
  chown "${user}:" "${CONF_DIR}" "${RUN_DIR}"
  chmod 0700 "${CONF_DIR}"
  password="$(mktemp "${CONF_DIR}/.pass.XXXXXX")"
  new="$(mktemp "${CONF_DIR}/.conf.XXXXXX")"
  TEMP_FILES+=("${password}" "${new}")
  read_password >"${password}" || die "cannot read the database password from ${SECRET_ARN}"
  [[ -s "${password}" ]] || die "secret ${SECRET_ARN} is empty"
  if grep -q '[[:space:]"]' "${password}"; then
    die "the password in ${SECRET_ARN} holds a space or a quote: slurmdbd.conf cannot hold it"
  fi
  render_conf "${password}" >"${new}"
  rm -f "${password}"
  if [[ -f "${CONF_DIR}/slurmdbd.conf" ]] && cmp -s "${new}" "${CONF_DIR}/slurmdbd.conf"; then
    changed=0
  fi
  chown "${user}:" "${new}"
  chmod 0600 "${new}"
  mv -f "${new}" "${CONF_DIR}/slurmdbd.conf"
  return $((1 - changed))
}

# The slurmctld side: AccountingStorageBackupHost, included by reconcile.py's pwb_ha.conf.
write_accounting_conf() {
  local target="${SLURM_ETC}/${ACCOUNTING_CONF}" content
  content="# Managed by pwb-ha (cluster/ha/slurmdbd-backup.sh): the backup slurmdbd.
AccountingStorageBackupHost=${NODE_NAME}"
  [[ -f "${target}" && "$(<"${target}")" == "${content}" ]] && return 1
  printf '%s\n' "${content}" >"${target}.new"
  chmod 0644 "${target}.new"
  mv -f "${target}.new" "${target}"
  log "wrote ${target}"
}

slurmdbd_pid() {
  local pid
  [[ -f "${RUN_DIR}/slurmdbd.pid" ]] || return 1
  pid="$(<"${RUN_DIR}/slurmdbd.pid")"
  [[ -r "/proc/${pid}/comm" && "$(<"/proc/${pid}/comm")" == "slurmdbd" ]] || return 1
  printf '%s\n' "${pid}"
}

# start_slurmdbd RESTART: slurmdbd finds slurmdbd.conf beside SLURM_CONF's file.
start_slurmdbd() {
  local restart="$1" pid
  if [[ "${INIT}" == "systemd" ]]; then
    mkdir -p "${SYSTEMD_DIR}"
    printf '%s\n' "[Unit]
Description=Slurm backup database daemon (pwb-ha)
After=network-online.target munge.service
Wants=network-online.target
ConditionPathExists=${CONF_DIR}/slurmdbd.conf

[Service]
Type=simple
Environment=SLURM_CONF=${CONF_DIR}/slurm.conf
ExecStart=${SLURM_PREFIX}/sbin/slurmdbd -D -s
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target" >"${SYSTEMD_DIR}/pwb-slurmdbd.service"
    timeout 60 systemctl daemon-reload || die "systemctl daemon-reload failed"
    timeout 60 systemctl enable pwb-slurmdbd.service || die "could not enable pwb-slurmdbd"
    if ((restart)); then
      timeout 60 systemctl restart pwb-slurmdbd.service || die "pwb-slurmdbd did not restart"
    else
      timeout 60 systemctl start pwb-slurmdbd.service || die "pwb-slurmdbd did not start"
    fi
    return 0
  fi
  if pid="$(slurmdbd_pid)"; then
    ((restart)) || return 0
    kill -TERM "${pid}" 2>/dev/null || true
    timeout 30 tail --pid="${pid}" -f /dev/null || kill -KILL "${pid}" 2>/dev/null || true
  fi
  SLURM_CONF="${CONF_DIR}/slurm.conf" "${SLURM_PREFIX}/sbin/slurmdbd" ||
    die "slurmdbd did not start (see ${RUN_DIR}/slurmdbd.log)"
}

cleanup() {
  ((${#TEMP_FILES[@]} == 0)) || rm -f "${TEMP_FILES[@]}"
}

main() {
  local holder restart=0
  trap cleanup EXIT
  parse_args "$@"
  validate_args
  holder="$(claim_slot)"
  if [[ "${holder}" != "mine" ]]; then
    log "${holder} is the backup slurmdbd (one DbdBackupHost per cluster): none here"
    return 0
  fi
  if write_conf; then restart=1; fi
  write_accounting_conf || true
  start_slurmdbd "${restart}"
  log "backup slurmdbd on ${NODE_NAME} (primary: $(head_value DbdHost))"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
