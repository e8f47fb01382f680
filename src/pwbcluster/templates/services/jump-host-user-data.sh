#!/usr/bin/env bash
# jump-host-user-data: join the directory, create the read-only bind user, install pwb-users.
#
# Runs once at first boot of the jump host (Ubuntu LTS, private subnet, managed through
# SSM). Reads its parameters from /etc/pwbcluster/jump-host.env (domain, DNS addresses,
# secret ARNs, region, bind user name, the pwb-users wheel's S3 URI: no secret values) and
# the passwords from Secrets Manager through the instance role.
# Needs: network access to the directory, S3, Secrets Manager, the Ubuntu archive and PyPI.
# Safe to re-run (through SSM: /usr/local/sbin/pwbcluster-jump-host): each step checks
# before it acts, and a re-run installs a newer pwb-users wheel if one was uploaded.
#
# Usage: jump-host-user-data.sh [--help]
set -o errexit -o nounset -o pipefail

readonly ENV_FILE="/etc/pwbcluster/jump-host.env"
readonly DONE_MARKER="/var/lib/pwbcluster/jump-host.done"
# python3-venv: pwb-users' own venv (it brings pip); libkrb5-3 and libgssapi-krb5-2: the
# Kerberos and GSSAPI libraries pwb-users loads (ctypes) for kpasswd and sealed LDAP.
readonly PACKAGES=(sssd sssd-tools realmd adcli krb5-user samba-common-bin ldap-utils packagekit
  python3-venv libkrb5-3 libgssapi-krb5-2)
# Where pwb-users goes (the environment may move both, as the bats tests do).
readonly TOOL_VENV="${PWB_USERS_VENV:-/opt/pwb-users}"
readonly TOOL_STAMP="${TOOL_VENV}/.pwbcluster-installed"
readonly TOOL_LINK="${PWB_USERS_LINK:-/usr/local/bin/pwb-users}"

log() { printf '[jump-host] %s\n' "$*" >&2; }
warn() { printf '[jump-host] warning: %s\n' "$*" >&2; }
die() {
  printf '[jump-host] error: %s\n' "$*" >&2
  exit 1
}
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

load_env() {
  [[ -r "${ENV_FILE}" ]] || die "missing ${ENV_FILE}"
  # shellcheck source=/dev/null
  source "${ENV_FILE}"
  local var
  for var in DOMAIN REALM DNS_ADDRESSES REGION ADMIN_USER ADMIN_SECRET_ARN BIND_SECRET_ARN BIND_USER; do
    [[ -n "${!var:-}" ]] || die "${ENV_FILE} does not set ${var}"
  done
}

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("${pkg}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    timeout 900 apt-get install -y -qq "${missing[@]}"
  fi
  if ! command -v aws >/dev/null 2>&1; then
    log "installing the AWS CLI (snap)"
    timeout 600 snap install aws-cli --classic
  fi
}

retry() {
  # retry ATTEMPTS DELAY COMMAND...: a bounded number of tries for a network step.
  local attempts="$1" delay="$2" try=1
  shift 2
  until "$@"; do
    if [[ ${try} -ge ${attempts} ]]; then
      warn "gave up after ${attempts} attempts: $*"
      return 1
    fi
    warn "attempt ${try}/${attempts} failed, retrying in ${delay} s: $*"
    sleep "${delay}"
    try=$((try + 1))
  done
}

install_pwb_users() {
  # The jump host is plain Ubuntu, not the cluster's AMI, and nothing else installs
  # software on it: pwb-users (what `invoke users.*` runs here through SSM) is installed at
  # its first boot, the one exception to "no software at boot". Its own venv holds the
  # toolkit's wheel (--no-deps) beside exactly the pinned runtime of pwb-users.
  if [[ -z "${TOOL_WHEEL_URI:-}" ]]; then
    warn "TOOL_WHEEL_URI is empty: pwb-users is not installed (invoke users.* will fail)"
    return 0
  fi
  local workdir wheel stamp
  local reqs=()
  read -r -a reqs <<<"${TOOL_REQUIREMENTS:-}"
  [[ ${#reqs[@]} -gt 0 ]] || die "${ENV_FILE} does not set TOOL_REQUIREMENTS"
  workdir="$(mktemp -d)"
  wheel="${workdir}/${TOOL_WHEEL_URI##*/}"
  if ! retry 5 15 timeout 300 aws s3 cp --only-show-errors --region "${REGION}" \
    --cli-connect-timeout 10 --cli-read-timeout 60 "${TOOL_WHEEL_URI}" "${wheel}"; then
    rm -rf "${workdir}"
    die "cannot download ${TOOL_WHEEL_URI}"
  fi
  stamp="$(sha256sum "${wheel}" | cut -d' ' -f1) ${reqs[*]}"
  if [[ -x "${TOOL_VENV}/bin/pwb-users" && "$(cat "${TOOL_STAMP}" 2>/dev/null)" == "${stamp}" ]]; then
    log "pwb-users is up to date"
  else
    log "installing pwb-users into ${TOOL_VENV}"
    if [[ ! -x "${TOOL_VENV}/bin/python" ]]; then
      timeout 300 python3 -m venv "${TOOL_VENV}" || die "cannot create ${TOOL_VENV}"
    fi
    local pip=("${TOOL_VENV}/bin/python" -m pip --disable-pip-version-check --no-input
      --timeout 60 --retries 3)
    rm -f "${TOOL_STAMP}"
    retry 3 30 timeout 600 "${pip[@]}" install "${reqs[@]}" \
      || die "cannot install ${reqs[*]} from PyPI"
    timeout 300 "${pip[@]}" install --no-deps --force-reinstall "${wheel}" \
      || die "cannot install ${wheel##*/}"
    printf '%s\n' "${stamp}" >"${TOOL_STAMP}"
  fi
  rm -rf "${workdir}"
  ln -sfn "${TOOL_VENV}/bin/pwb-users" "${TOOL_LINK}"
  "${TOOL_LINK}" --help >/dev/null || die "pwb-users is installed but does not start"
}

use_directory_dns() {
  local conf="/etc/systemd/resolved.conf.d/pwbcluster-directory.conf"
  mkdir -p "$(dirname "${conf}")"
  printf '[Resolve]\nDNS=%s\nDomains=~%s\n' "${DNS_ADDRESSES}" "${DOMAIN}" >"${conf}.new"
  if ! cmp -s "${conf}.new" "${conf}" 2>/dev/null; then
    mv "${conf}.new" "${conf}"
    systemctl restart systemd-resolved
  else
    rm -f "${conf}.new"
  fi
}

read_secret() {
  local arn="$1"
  timeout 60 aws secretsmanager get-secret-value --region "${REGION}" \
    --secret-id "${arn}" --query SecretString --output text
}

join_domain() {
  if realm list --name-only 2>/dev/null | grep -qix "${DOMAIN}"; then
    log "already joined to ${DOMAIN}"
    return 0
  fi
  log "joining ${DOMAIN}"
  read_secret "${ADMIN_SECRET_ARN}" \
    | timeout 300 realm join --user="${ADMIN_USER}" "${DOMAIN}"
  sed -i 's/^use_fully_qualified_names = True/use_fully_qualified_names = False/' \
    /etc/sssd/sssd.conf
  systemctl restart sssd
}

ensure_bind_user() {
  # The bind user is a plain domain user: it can read the directory and change nothing.
  if getent passwd "${BIND_USER}" >/dev/null 2>&1; then
    log "bind user ${BIND_USER} exists"
  else
    log "creating read-only bind user ${BIND_USER}"
    # Managed AD lets its Admin write only below OU=Users,OU=<NetBIOS name>.
    local ou=()
    [[ -n "${USERS_OU:-}" ]] && ou=(--domain-ou="${USERS_OU}")
    read_secret "${ADMIN_SECRET_ARN}" | timeout 120 adcli create-user "${BIND_USER}" \
      --domain="${DOMAIN}" --login-user="${ADMIN_USER}" --stdin-password "${ou[@]}" \
      --display-name="ParallelCluster read-only bind"
  fi
  log "setting the bind user's password from Secrets Manager"
  set_bind_password
}

set_bind_password() {
  local bind
  bind="$(read_secret "${BIND_SECRET_ARN}")"
  # Samba's net sets another user's password over Kerberos (kpasswd set-password); this
  # works on SimpleAD and Managed AD and with every adcli version. The password is on
  # net's command line for a moment, on a host only administrators reach through SSM.
  read_secret "${ADMIN_SECRET_ARN}" | timeout 60 kinit "${ADMIN_USER}@${REALM}" >/dev/null
  timeout 120 net ads password "${BIND_USER}@${REALM}" "${bind}" --use-kerberos=required
  kdestroy
}

main() {
  if [[ "${1:-}" == "--help" ]]; then
    usage
    return 0
  fi
  [[ "$(id -u)" -eq 0 ]] || die "run as root"
  load_env
  install_packages
  use_directory_dns
  join_domain
  ensure_bind_user
  install_pwb_users
  # The toolkit waits for this marker (through SSM) before the cluster stage binds.
  install -d -m 0755 "$(dirname "${DONE_MARKER}")"
  touch "${DONE_MARKER}"
  log "done"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] && main "$@"
