#!/usr/bin/env bash
# common.sh: functions every node script of the cluster shares (sourced, not run).
#
# Logging with the calling script's [name] prefix, the non-secret node settings file
# (node.env: KEY=value lines, read as data and never executed), bounded AWS CLI calls,
# secrets read from Secrets Manager with the instance role, and idempotent file
# installation (a file is replaced only when its content, mode or owner differ, so a
# second run changes nothing).
#
# Needs: bash, coreutils, the aws CLI (in the ParallelCluster AMI). Safe to source twice.

# Set by the sourcing script; a default keeps `set -o nounset` happy when sourced alone.
: "${SCRIPT_NAME:=node}"
# Bounds on every AWS call: a node never hangs at boot on an unreachable endpoint.
AWS_CONNECT_TIMEOUT="${AWS_CONNECT_TIMEOUT:-10}"
AWS_READ_TIMEOUT="${AWS_READ_TIMEOUT:-30}"
# Set to 1 by install_file/install_content when they changed something.
CHANGED="${CHANGED:-0}"

log() { printf '[%s] %s\n' "${SCRIPT_NAME}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${SCRIPT_NAME}" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

# aws_cli ARGS...: the aws CLI with connect and read timeouts.
aws_cli() {
  aws --cli-connect-timeout "${AWS_CONNECT_TIMEOUT}" --cli-read-timeout "${AWS_READ_TIMEOUT}" "$@"
}

# The only keys node.env may set (src/pwbcluster/stages/cluster/bundle.py writes exactly
# these; a test compares the two). Anything else (PATH, LD_PRELOAD, BASH_ENV, IFS...)
# would change how every later command of a root script runs, so it is refused.
NODE_ENV_KEYS=(
  DEPLOYMENT REGION CLUSTER_NAME
  WORKBENCH_SHARED_DIR WORKBENCH_PORT WORKBENCH_HOSTNAME WORKBENCH_CA
  LB_SCHEME LB_PORT
  DB_HOST DB_PORT DB_NAME DB_USERNAME DB_PASSWORD_SECRET_ARN
  DB_MASTER_USERNAME DB_MASTER_PASSWORD_SECRET_ARN
  AUDIT_DB_HOST AUDIT_DB_PORT AUDIT_DB_NAME AUDIT_DB_USERNAME AUDIT_DB_PASSWORD_SECRET_ARN
  AUDIT_DB_MASTER_USERNAME AUDIT_DB_MASTER_PASSWORD_SECRET_ARN
  COOKIE_KEY_SECRET_ARN LICENSE_KIND LICENSE_SECRET_ARN LICENSE_SERVER
  LDAP_TLS LDAP_CA_PATH
  HA_CONTROLLERS HA_SHARED_DIR HA_SCALING_SUMS_URI SLURMCTLD_TIMEOUT
  SLURMDBD_BACKUP SLURMDB_PASSWORD_SECRET_ARN
  CONTAINER_SESSIONS CONTAINER_IMAGES CONTAINER_TAG_VERSION CONTAINER_DIGESTS
)

# node_env_key_allowed KEY: succeed when KEY is in NODE_ENV_KEYS.
node_env_key_allowed() {
  local key="$1" allowed
  for allowed in "${NODE_ENV_KEYS[@]}"; do
    [[ "${key}" == "${allowed}" ]] && return 0
  done
  return 1
}

# load_env FILE: export each KEY=value line of FILE. Values are taken literally (no
# quotes, no expansion, nothing executed); comments and blank lines are skipped. Only
# keys of NODE_ENV_KEYS are accepted, and a value with a carriage return or other
# control character is refused (a line break already ends the line).
load_env() {
  local file="$1" line key value
  [[ -r "${file}" ]] || die "settings file ${file} is missing or unreadable"
  while IFS= read -r line || [[ -n "${line}" ]]; do
    [[ -z "${line}" || "${line}" == \#* ]] && continue
    [[ "${line}" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]] || die "bad line in ${file}: ${line%%=*}"
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    node_env_key_allowed "${key}" || die "${file}: key ${key} is not an allowed node setting"
    [[ "${value}" =~ [[:cntrl:]] ]] && die "${file}: ${key} has a control character in its value"
    printf -v "${key}" '%s' "${value}"
    export "${key?}"
  done <"${file}"
}

# require_env NAME...: die unless every named setting is non-empty.
require_env() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || die "setting ${name} is missing from node.env"
  done
}

# fetch_secret ARN: print the secret's value on stdout (never logged).
fetch_secret() {
  local arn="$1" value
  value="$(aws_cli secretsmanager get-secret-value --secret-id "${arn}" \
    --query SecretString --output text)" || return 1
  [[ -n "${value}" && "${value}" != "None" ]] || return 1
  printf '%s' "${value}"
}

# file_state PATH: "mode owner:group" of PATH, or nothing if it does not exist.
file_state() {
  [[ -e "$1" ]] && stat -c '%a %U:%G' "$1"
  return 0
}

# install_content DEST MODE OWNER: write stdin to DEST (via a private temp file) when the
# content, mode or owner differ; sets CHANGED=1 when it did. Secrets pass through here:
# the temp file is created mode 600 before anything is written to it.
install_content() {
  local dest="$1" mode="$2" owner="$3" tmp
  mkdir -p "$(dirname "${dest}")"
  tmp="$(umask 077 && mktemp "${dest}.XXXXXX")"
  cat >"${tmp}"
  if [[ -f "${dest}" ]] && cmp -s "${tmp}" "${dest}" \
    && [[ "$(file_state "${dest}")" == "$(printf '%o' "0${mode}") ${owner}" ]]; then
    rm -f "${tmp}"
    return 0
  fi
  chmod "${mode}" "${tmp}"
  chown "${owner}" "${tmp}"
  mv -f "${tmp}" "${dest}"
  CHANGED=1
  log "wrote ${dest} (mode ${mode}, ${owner})"
}

# install_file SRC DEST MODE OWNER: install_content from a file.
install_file() {
  local src="$1"
  shift
  [[ -r "${src}" ]] || die "${src} is missing"
  install_content "$@" <"${src}"
}

# run_optional NAME COMMAND...: run a step whose failure must not fail the node (a
# failing login-node script makes the pool replace the node forever,
# aws/aws-parallelcluster#6507); the failure is logged loudly instead.
run_optional() {
  local name="$1"
  shift
  if ("$@"); then
    return 0
  fi
  warn "optional step '${name}' failed; the node carries on without it"
  OPTIONAL_FAILURES="${OPTIONAL_FAILURES:-}${OPTIONAL_FAILURES:+, }${name}"
  return 0
}

# node_address: this node's private IPv4 (source address of the default route).
node_address() {
  local addr
  addr="$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)"
  [[ -n "${addr}" ]] || addr="$(hostname -I 2>/dev/null | awk '{print $1}')"
  [[ -n "${addr}" ]] || return 1
  printf '%s' "${addr}"
}

# wait_for FILE SECONDS: wait (bounded) until FILE exists.
wait_for() {
  local file="$1" limit="$2" waited=0
  while [[ ! -e "${file}" ]]; do
    ((waited >= limit)) && return 1
    sleep 5
    waited=$((waited + 5))
  done
}
