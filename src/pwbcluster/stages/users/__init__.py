"""Directory users: bulk creation that is fast, verified and idempotent (``pwb-users``).

Modules: ``spec`` (the batch and its checks), ``store`` (where passwords live),
``krb5``/``sasl`` (MIT Kerberos through ctypes: kpasswd, logins, a sealed SASL layer for
LDAP without LDAPS), ``directory`` (one administrator session), ``engine`` (create,
delete, list, verify), ``cli`` (the ``pwb-users`` command), ``ssm`` (running it on the
jump host) and ``stage`` (entry points for the orchestrator's users stage).

Only the standard library, ldap3 and boto3 are imported, so the tool installs on the jump
host with ``pip install --no-deps <wheel> ldap3 boto3``.
"""
