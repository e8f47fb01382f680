"""The directory on the lab's nodes, as ParallelCluster's DirectoryService configures sssd.

A **stand-in** for aws-parallelcluster-cookbook's
``cookbooks/aws-parallelcluster-environment/recipes/config/directory_service.rb`` and
``templates/directory_service/sssd.conf.erb``: on the head node, sssd.conf's
``[domain/default]`` from the cluster config's DirectoryService (ldap_uri = DomainAddr,
the search base from DomainName, the bind DN, the bind password read with ``aws
secretsmanager get-secret-value`` on PasswordSecretArn *from the node*, LdapTlsReqCert,
LdapTlsCaCert, LdapAccessFilter with access_provider = ldap, ldap_schema = AD,
ldap_id_mapping = True), root-owned 0600, copied to
``/opt/parallelcluster/shared*/directory_service/``; the login and compute nodes copy
it from there; then ``pam-auth-update --enable mkhomedir`` (its Debian
system_authentication) and sssd (re)started on each node. What the cookbook does besides
(ssh password authentication, the ssh key generation hook) is not done:
the lab has no sshd.

``ldap_id_mapping = True`` means sssd derives each uid and gid from the object's SID
(a hash of the domain SID into a range, plus the RID), ignoring the uidNumber/gidNumber
attributes: the uids ``pwb-users`` may set in the directory are not the ones nodes use.
They are the same on every node (same domain SID, same sssd defaults), which is what a
shared /home needs.
"""

from __future__ import annotations

from pwbcluster.errors import ToolkitError

SSSD_CONF = "/etc/sssd/sssd.conf"


def domain_properties(settings: dict[str, str], password: str) -> dict[str, str]:
    """[domain/default] as directory_service.rb builds it (same keys, same values)."""
    domain = settings["DomainName"]
    if all(part.replace("-", "").replace("_", "").isalnum() for part in domain.split(".")):
        base = ",".join(f"DC={part}" for part in domain.split("."))
    else:
        base = domain
    uris = [a if "://" in a else f"ldaps://{a}" for a in settings["DomainAddr"].split(",")]
    props = {
        "id_provider": "ldap",
        "ldap_schema": "AD",
        "ldap_uri": ",".join(uris),
        "ldap_search_base": base,
        "ldap_default_bind_dn": settings["DomainReadOnlyUser"],
        "ldap_default_authtok": password,
        "ldap_tls_reqcert": settings.get("LdapTlsReqCert", "hard"),
        "cache_credentials": "True",
        "default_shell": "/bin/bash",
        "fallback_homedir": "/home/%u",
        "ldap_id_mapping": "True",
        "ldap_referrals": "False",
        "use_fully_qualified_names": "False",
    }
    ca = settings.get("LdapTlsCaCert", "NONE")
    if ca != "NONE":
        props["ldap_tls_cacert"] = ca
    access = settings.get("LdapAccessFilter", "NONE")
    if access != "NONE":
        props["access_provider"] = "ldap"
        props["ldap_access_filter"] = access
    for item in settings.get("AdditionalSssdConfigs") or {}:
        raise ToolkitError(f"AdditionalSssdConfigs ({item}) is not stood in for by the lab")
    return props


def render(props: dict[str, str]) -> str:
    """sssd.conf.erb: the domain's keys in lexicographic order, then the fixed sections."""
    domain = "".join(f"{key} = {props[key]}\n" for key in sorted(props))
    return (
        f"[domain/default]\n{domain}\n"
        "[domain/local]\nid_provider = files\nenumerate = True\n\n"
        "[sssd]\nconfig_file_version = 2\nservices = nss, pam, ssh\n"
        "domains = default, local\nfull_name_format = %1$s\n\n"
        "[nss]\nfilter_users = nobody,root\nfilter_groups = nobody,root\n\n"
        "[pam]\noffline_credentials_expiration = 7\n"
    )
