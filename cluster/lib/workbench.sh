#!/usr/bin/env bash
# workbench.sh: Workbench on a login node (sourced by login-node.sh and the tests).
#
# Installs the configuration the head node put on shared storage (identical on every
# login node), then adds only what is secret or belongs to this node: the database
# password(s), the secure-cookie-key and the licence (from Secrets Manager, root-owned,
# mode 600), this node's load-balancer address and the sessions' callback address.
#
# Needs: common.sh sourced first, node.env loaded. Paths can be pointed elsewhere for
# tests through RSTUDIO_ETC and WORKBENCH_SHARED_DIR. Safe to run twice.

RSTUDIO_ETC="${RSTUDIO_ETC:-/etc/rstudio}"
ROOT_OWNER="${ROOT_OWNER:-root:root}"
# Where Workbench looks for a licence file, and the account that must own it (Posit:
# chown rstudio-server, chmod 600, in /var/lib/rstudio-server/).
LICENSE_DIR="${LICENSE_DIR:-/var/lib/rstudio-server}"
WORKBENCH_OWNER="${WORKBENCH_OWNER:-rstudio-server:rstudio-server}"
# Files the login node writes itself; everything else comes from shared storage.
NODE_FILES=(database.conf audit-database.conf load-balancer rserver.conf secure-cookie-key)

shared_etc() { printf '%s/etc/rstudio' "${WORKBENCH_SHARED_DIR}"; }

# cat_lines FILE: FILE's content, ending with a newline even if the file does not.
cat_lines() {
  cat "$1" || return 1
  [[ -z "$(tail -c 1 "$1")" ]] || printf '\n'
}

# install_workbench_config: copy the shared (non-secret) files into RSTUDIO_ETC.
install_workbench_config() {
  local src name skip node_file
  src="$(shared_etc)"
  [[ -f "${src}/rserver.conf" ]] || die "no Workbench configuration in ${src}: did the head node finish?"
  for path in "${src}"/*; do
    name="$(basename "${path}")"
    skip=0
    for node_file in "${NODE_FILES[@]}"; do
      [[ "${name}" == "${node_file}" ]] && skip=1
    done
    ((skip)) && continue
    install_file "${path}" "${RSTUDIO_ETC}/${name}" 644 "${ROOT_OWNER}"
  done
  # Identical on every node: Workbench's load balancing needs the same launcher key pair.
  if [[ -f "${WORKBENCH_SHARED_DIR}/keys/launcher.pem" ]]; then
    install_file "${WORKBENCH_SHARED_DIR}/keys/launcher.pem" "${RSTUDIO_ETC}/launcher.pem" 600 "${ROOT_OWNER}"
    install_file "${WORKBENCH_SHARED_DIR}/keys/launcher.pub" "${RSTUDIO_ETC}/launcher.pub" 644 "${ROOT_OWNER}"
  fi
}

# write_database_conf NAME ARN: the shared NAME (database.conf or audit-database.conf)
# plus its password from Secrets Manager, root-owned, mode 600.
write_database_conf() {
  local name="$1" arn="$2" password
  [[ -f "$(shared_etc)/${name}" ]] || die "$(shared_etc)/${name} is missing"
  password="$(fetch_secret "${arn}")" || die "cannot read the ${name} password from Secrets Manager (${arn})"
  [[ "${password}" != *$'\n'* ]] || die "the ${name} password secret holds more than one line"
  { cat "$(shared_etc)/${name}"; printf 'password=%s\n' "${password}"; } \
    | install_content "${RSTUDIO_ETC}/${name}" 600 "${ROOT_OWNER}"
}

# write_cookie_key: the secure-cookie-key every login node shares, mode 600.
write_cookie_key() {
  local key
  key="$(fetch_secret "${COOKIE_KEY_SECRET_ARN}")" || die "cannot read the secure-cookie-key from Secrets Manager"
  printf '%s\n' "${key}" | install_content "${RSTUDIO_ETC}/secure-cookie-key" 600 "${ROOT_OWNER}"
}

# write_load_balancer ADDRESS: the shared load-balancer file plus this node's address
# (the one per-node difference; pwbcluster.workbench.node_load_balancer does the same).
write_load_balancer() {
  local address="$1"
  [[ "${address}" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad node address '${address}'"
  { cat_lines "$(shared_etc)/load-balancer"; printf 'www-host-name=%s\n' "${address}"; } \
    | install_content "${RSTUDIO_ETC}/load-balancer" 644 "${ROOT_OWNER}"
}

# login_lb_dns: the DNS name of this cluster's login load balancer (tagged by
# ParallelCluster with the cluster name), or nothing.
login_lb_dns() {
  local arns arn
  arns="$(aws_cli elbv2 describe-load-balancers --query 'LoadBalancers[].LoadBalancerArn' --output text)" || return 1
  for arn in ${arns}; do
    if aws_cli elbv2 describe-tags --resource-arns "${arn}" \
      --query "TagDescriptions[].Tags[?Key=='parallelcluster:cluster-name'].Value" --output text \
      | grep -qx "${CLUSTER_NAME}"; then
      aws_cli elbv2 describe-load-balancers --load-balancer-arns "${arn}" \
        --query 'LoadBalancers[0].DNSName' --output text
      return 0
    fi
  done
  return 1
}

# callback_url ADDRESS: where sessions call back: the deployment's hostname (the name its
# own certificate covers), else the login load balancer's AWS name (the same on every
# node; covered by the generated certificate), else this node directly (works inside the
# VPC, not across its loss).
callback_url() {
  local address="$1" dns
  if [[ -n "${WORKBENCH_HOSTNAME:-}" ]]; then
    printf '%s://%s:%s' "${LB_SCHEME}" "${WORKBENCH_HOSTNAME}" "${LB_PORT}"
    return 0
  fi
  if dns="$(login_lb_dns)" && [[ -n "${dns}" && "${dns}" != "None" ]]; then
    printf '%s://%s:%s' "${LB_SCHEME}" "${dns}" "${LB_PORT}"
    return 0
  fi
  warn "login load balancer not found; sessions call back to this node (${address}) directly"
  printf 'http://%s:%s' "${address}" "${WORKBENCH_PORT}"
}

# write_rserver_conf URL: the shared rserver.conf plus the sessions' callback address.
write_rserver_conf() {
  local url="$1"
  [[ "${url}" =~ ^https?://[A-Za-z0-9.-]+:[0-9]+$ ]] || die "bad callback address '${url}'"
  { cat_lines "$(shared_etc)/rserver.conf"; printf 'launcher-sessions-callback-address=%s\n' "${url}"; } \
    | install_content "${RSTUDIO_ETC}/rserver.conf" 644 "${ROOT_OWNER}"
}

# activate_license: license this node as cluster.workbench.license_kind says (Posit's
# license management guide, docs.posit.co/ide/server-pro/license_management/):
#   key    - activate once per value; deactivated again when the node stops;
#   file   - the licence file in LICENSE_DIR, owned by Workbench's account, mode 600:
#            Workbench reads it at start and nothing is activated, so nothing leaks;
#   server - name the floating licence server once (Workbench keeps it, takes a lease at
#            start and releases it when it stops; rserver.conf has server-license-type).
# Without a licence, say what that means: Workbench needs one to serve users.
activate_license() {
  # A licence file left from an earlier kind would bypass every other method (Posit).
  if [[ "${LICENSE_KIND:-key}" != file && -f "${LICENSE_DIR}/pwbcluster.lic" ]]; then
    rm -f "${LICENSE_DIR}/pwbcluster.lic"
    log "removed the licence file of an earlier licence kind"
  fi
  case "${LICENSE_KIND:-key}" in
    server) use_license_server; return ;;
    key | file) ;;
    *) warn "unknown licence kind '${LICENSE_KIND}' (key, file or server)"; return 1 ;;
  esac
  local value digest marker="${RSTUDIO_ETC}/.pwbcluster-license.sha256"
  if [[ -z "${LICENSE_SECRET_ARN:-}" ]]; then
    warn "no Workbench licence configured (cluster.workbench.license_secret_arn): Posit Workbench needs a licence key, file or licence server to serve users, and this node has none"
    return 0
  fi
  value="$(fetch_secret "${LICENSE_SECRET_ARN}")" || { warn "cannot read the licence secret"; return 1; }
  if [[ "${LICENSE_KIND:-key}" == file ]]; then
    printf '%s\n' "${value}" | install_content "${LICENSE_DIR}/pwbcluster.lic" 600 "${WORKBENCH_OWNER}"
    log "licence file in place (${LICENSE_DIR}/pwbcluster.lic)"
    return 0
  fi
  if [[ "${value}" == *$'\n'* ]]; then
    warn "the licence secret holds several lines, not a key: set cluster.workbench.license_kind: file for a licence file"
    return 1
  fi
  digest="$(printf '%s' "${value}" | sha256sum | cut -d' ' -f1)"
  if [[ -f "${marker}" && "$(cat "${marker}")" == "${digest}" ]]; then
    log "licence already activated"
    return 0
  fi
  rstudio-server license-manager activate "${value}" >/dev/null || return 1
  deactivation_unit || return 1
  printf '%s\n' "${digest}" | install_content "${marker}" 600 "${ROOT_OWNER}"
  log "licence activated"
}

# use_license_server: point Workbench at the floating licence server, once per value.
use_license_server() {
  local marker="${RSTUDIO_ETC}/.pwbcluster-license-server"
  [[ -n "${LICENSE_SERVER:-}" ]] || { warn "license_kind is server but no licence server is named"; return 1; }
  if [[ -f "${marker}" && "$(cat "${marker}")" == "${LICENSE_SERVER}" ]]; then
    log "licence server already set (${LICENSE_SERVER})"
    return 0
  fi
  rstudio-server license-manager license-server "${LICENSE_SERVER}" >/dev/null || return 1
  printf '%s\n' "${LICENSE_SERVER}" | install_content "${marker}" 644 "${ROOT_OWNER}"
  log "licence leases from ${LICENSE_SERVER} (released when Workbench stops)"
}

# deactivation_unit: a unit whose stop deactivates the licence key, so a login node the
# pool replaces or scales in gives its activation back. It is ordered after the network
# and Workbench, so at shutdown it stops (and deactivates) before they do; the call is
# bounded (LICENSE_DEACTIVATE_TIMEOUT seconds) so a slow licence server cannot hold the
# node's termination. Started at once (its start does nothing).
deactivation_unit() {
  local unit="pwbcluster-license-deactivate.service" timeout="${LICENSE_DEACTIVATE_TIMEOUT:-60}"
  printf '%s\n' \
    "# Written by pwbcluster (cluster/lib/workbench.sh): give the licence key's activation" \
    "# back when this login node stops." \
    "[Unit]" \
    "Description=Deactivate the Workbench licence key when this node stops" \
    "Wants=network-online.target" \
    "After=network-online.target rstudio-server.service" \
    "" \
    "[Service]" \
    "Type=oneshot" \
    "RemainAfterExit=yes" \
    "ExecStart=/bin/true" \
    "ExecStop=/usr/bin/timeout ${timeout} /usr/sbin/rstudio-server license-manager deactivate" \
    "TimeoutStopSec=$((timeout + 30))" \
    "" \
    "[Install]" \
    "WantedBy=multi-user.target" \
    | install_content "${SYSTEMD_DIR:-/etc/systemd/system}/${unit}" 644 "${ROOT_OWNER}"
  systemctl daemon-reload || return 1
  systemctl enable --now "${unit}" >/dev/null || return 1
  log "licence deactivation on stop installed (${unit})"
}

# config_fingerprint: content, mode and owner of every file Workbench reads.
config_fingerprint() {
  [[ -d "${RSTUDIO_ETC}" ]] || return 0
  find "${RSTUDIO_ETC}" -type f -printf '%p %m %u:%g\n' 2>/dev/null | sort
  find "${RSTUDIO_ETC}" -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
  # The licence file is read at start too: a new one needs a restart.
  if [[ -f "${LICENSE_DIR}/pwbcluster.lic" ]]; then
    stat -c '%n %a %U:%G' "${LICENSE_DIR}/pwbcluster.lic"
    sha256sum "${LICENSE_DIR}/pwbcluster.lic"
  fi
}

# start_workbench CHANGED: enable and (re)start the launcher and rserver when the
# configuration changed or they are not running.
start_workbench() {
  local changed="$1" unit
  for unit in rstudio-launcher rstudio-server; do
    systemctl enable "${unit}" >/dev/null 2>&1 || true
    if [[ "${changed}" == 1 ]] || ! systemctl is-active --quiet "${unit}"; then
      systemctl restart "${unit}" || return 1
      log "(re)started ${unit}"
    fi
  done
}

# health_check: Workbench answers on its health-check endpoint (bounded wait).
health_check() {
  local tries=0
  until curl --silent --fail --connect-timeout 2 --max-time 5 \
    "http://127.0.0.1:${WORKBENCH_PORT}/health-check" >/dev/null; do
    tries=$((tries + 1))
    ((tries >= ${HEALTH_TRIES:-24})) && return 1
    sleep "${HEALTH_SLEEP:-5}"
  done
  log "Workbench is healthy on port ${WORKBENCH_PORT}"
}
