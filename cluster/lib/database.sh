#!/usr/bin/env bash
# database.sh: Workbench's own PostgreSQL roles (sourced by head-node.sh and the tests).
#
# Workbench does not connect as the RDS master user. For each of its databases (the
# internal one, DB_*, and the audit one, AUDIT_DB_*, when node.env names it) the head
# node makes sure a dedicated role exists: LOGIN with the password of its own secret, no
# SUPERUSER, CREATEDB or CREATEROLE, owner of that one database (so Workbench can create
# its schema there), and the database closed to every other role (PUBLIC loses CONNECT).
# The master password is read only when something is missing: it serves nothing else.
#
# Connections are TLS, verified against the Amazon RDS CA bundle the image installs
# (sslmode=verify-full), as database.conf's are. Passwords go to psql through its
# environment and stdin, never its command line.
#
# Needs: common.sh sourced first, node.env loaded, psql (in the AMI). Safe to run twice:
# a role that logs in with its password and holds exactly these rights is left alone.

RDS_CA_PATH="${RDS_CA_PATH:-/etc/pwbcluster/rds-ca-bundle.pem}"
# Role and database names the toolkit generates; anything else is refused before psql.
DB_IDENTIFIER_RE='^[a-z_][a-z0-9_]{0,62}$'

# db_dsn HOST PORT NAME USER: a libpq connection string, TLS verified.
db_dsn() {
  printf 'host=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s connect_timeout=10' \
    "$1" "$2" "$3" "$4" "${RDS_CA_PATH}"
}

# db_role_in_place DSN PASSWORD: true when the role of DSN logs in with PASSWORD, owns its
# database, has none of SUPERUSER, CREATEDB, CREATEROLE, and PUBLIC may not connect.
db_role_in_place() {
  local dsn="$1" password="$2" answer
  answer="$(PGPASSWORD="${password}" psql "${dsn}" -X -q -tA -v ON_ERROR_STOP=1 2>/dev/null <<'SQL'
SELECT d.datdba = r.oid AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole)
       AND NOT has_database_privilege('public', d.datname, 'CONNECT')
  FROM pg_database d, pg_roles r
 WHERE d.datname = current_database() AND r.rolname = current_user;
SQL
)" || return 1
  [[ "${answer}" == "t" ]]
}

# create_db_role MASTER_DSN MASTER_PASSWORD ROLE ROLE_PASSWORD DATABASE: create or repair
# ROLE with the master user (an RDS master is no superuser: every statement here is one it
# may run). The role's password travels on stdin as a psql variable (in psql's quoting:
# a backslash and a single quote escaped), then into SQL quoted by psql (:'password').
create_db_role() {
  local dsn="$1" master_password="$2" role="$3" role_password="$4" database="$5" quoted
  quoted="${role_password//\\/\\\\}"
  quoted="${quoted//\'/\'\'}"
  {
    printf '\\set role %s\n\\set database %s\n' "${role}" "${database}"
    printf "\\\\set password '%s'\n" "${quoted}"
    cat <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS missing \gset
\if :missing
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'password';
\else
ALTER ROLE :"role" LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'password';
\endif
-- Only this role (and the master, which manages it) may connect to its database.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO CURRENT_USER;
-- Owning the database needs the master to be a member of the new owner.
GRANT :"role" TO CURRENT_USER;
ALTER DATABASE :"database" OWNER TO :"role";
SQL
  } | PGPASSWORD="${master_password}" psql "${dsn}" -X -q -v ON_ERROR_STOP=1 >/dev/null
}

# ensure_db_role PREFIX: the role of the database node.env describes under PREFIX (DB or
# AUDIT_DB): PREFIX_HOST, _PORT, _NAME, _USERNAME, _PASSWORD_SECRET_ARN, _MASTER_USERNAME,
# _MASTER_PASSWORD_SECRET_ARN.
ensure_db_role() {
  local prefix="$1" host port name role master role_arn master_arn role_password master_password
  require_env "${prefix}_HOST" "${prefix}_PORT" "${prefix}_NAME" "${prefix}_USERNAME" \
    "${prefix}_PASSWORD_SECRET_ARN" "${prefix}_MASTER_USERNAME" "${prefix}_MASTER_PASSWORD_SECRET_ARN"
  host="$(printenv "${prefix}_HOST")" port="$(printenv "${prefix}_PORT")"
  name="$(printenv "${prefix}_NAME")" role="$(printenv "${prefix}_USERNAME")"
  master="$(printenv "${prefix}_MASTER_USERNAME")"
  role_arn="$(printenv "${prefix}_PASSWORD_SECRET_ARN")"
  master_arn="$(printenv "${prefix}_MASTER_PASSWORD_SECRET_ARN")"
  [[ "${host}" =~ ^[A-Za-z0-9.-]+$ && "${port}" =~ ^[0-9]+$ ]] || die "${prefix}: bad database address '${host}:${port}'"
  local id
  for id in "${name}" "${role}" "${master}"; do
    [[ "${id}" =~ ${DB_IDENTIFIER_RE} ]] || die "${prefix}: '${id}' is not a database or role name the toolkit makes"
  done
  [[ "${role}" != "${master}" ]] || die "${prefix}: Workbench's role must not be the master user ${master}"
  command -v psql >/dev/null 2>&1 || die "psql is not in the image (the head node creates Workbench's database role with it)"
  role_password="$(fetch_secret "${role_arn}")" || die "cannot read the ${role} password from Secrets Manager (${role_arn})"
  [[ "${role_password}" != *$'\n'* ]] || die "the ${role} password secret holds more than one line"
  if db_role_in_place "$(db_dsn "${host}" "${port}" "${name}" "${role}")" "${role_password}"; then
    log "database role ${role} on ${host}/${name} in place"
    return 0
  fi
  master_password="$(fetch_secret "${master_arn}")" || die "cannot read the ${master} (master) password from Secrets Manager (${master_arn})"
  create_db_role "$(db_dsn "${host}" "${port}" "${name}" "${master}")" "${master_password}" \
    "${role}" "${role_password}" "${name}" || die "cannot create database role ${role} on ${host}/${name}"
  db_role_in_place "$(db_dsn "${host}" "${port}" "${name}" "${role}")" "${role_password}" \
    || die "database role ${role} on ${host}/${name} was set up but does not log in with its rights"
  log "database role ${role} on ${host}/${name} created (owner of ${name}, no other rights)"
}

# database_roles: every Workbench database node.env names.
database_roles() {
  ensure_db_role DB
  if [[ -n "${AUDIT_DB_HOST:-}" ]]; then
    ensure_db_role AUDIT_DB
  fi
}
