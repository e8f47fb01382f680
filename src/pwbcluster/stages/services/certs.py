"""A private CA and a server certificate it signs, imported into ACM.

The LDAPS front of the directory and Workbench's TLS listener both use one when the
deployment brings no certificate of its own: a CA generated here (its certificate is
public and handed to the nodes, which trust it), a server key and certificate signed by
it for the given DNS names, and the pair imported into ACM for a load balancer listener.
The private keys live only in the Pulumi state (encrypted with the stack's secrets
provider) and in ACM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi_aws as aws
import pulumi_tls as tls

import pulumi

CA_VALIDITY_HOURS = 10 * 365 * 24
SERVER_VALIDITY_HOURS = 2 * 365 * 24
# Pulumi renews the server certificate on an update within this window of its expiry;
# `invoke aux.renew-certs` re-issues it at any time.
EARLY_RENEWAL_HOURS = 30 * 24
# The resource type `aux.renew-certs` replaces (ACM re-imports the new one in place, so
# the listeners keep the same certificate ARN).
SERVER_CERT_TYPE = "tls:index/locallySignedCert:LocallySignedCert"


@dataclass(frozen=True)
class ImportedCertificate:
    ca_cert_pem: pulumi.Output[str]
    certificate_arn: pulumi.Output[str]
    # The server certificate's notAfter (RFC 3339), recorded in the stage's contract so
    # `invoke status` and `plan` warn ahead of it (pwbcluster.stages.services.expiry).
    not_after: pulumi.Output[str]


def private_ca(name: str, common_name: str, opts: pulumi.ResourceOptions) -> tuple[Any, Any]:
    """(key, self-signed CA certificate), named ``{name}-ca-key`` and ``{name}-ca``."""
    key = tls.PrivateKey(f"{name}-ca-key", algorithm="RSA", rsa_bits=3072, opts=opts)
    cert = tls.SelfSignedCert(
        f"{name}-ca",
        private_key_pem=key.private_key_pem,
        is_ca_certificate=True,
        validity_period_hours=CA_VALIDITY_HOURS,
        allowed_uses=["cert_signing", "crl_signing"],
        subject={"common_name": common_name, "organization": "pwbcluster"},
        opts=opts,
    )
    return key, cert


def server_certificate(
    name: str,
    ca: tuple[Any, Any],
    common_name: str,
    dns_names: Sequence[Any],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> ImportedCertificate:
    """A server certificate for ``dns_names`` signed by ``ca``, imported into ACM."""
    ca_key, ca_cert = ca
    key = tls.PrivateKey(f"{name}-server-key", algorithm="RSA", rsa_bits=2048, opts=opts)
    request = tls.CertRequest(
        f"{name}-csr",
        private_key_pem=key.private_key_pem,
        dns_names=list(dns_names),
        subject={"common_name": common_name, "organization": "pwbcluster"},
        opts=opts,
    )
    signed = tls.LocallySignedCert(
        f"{name}-server-cert",
        cert_request_pem=request.cert_request_pem,
        ca_private_key_pem=ca_key.private_key_pem,
        ca_cert_pem=ca_cert.cert_pem,
        validity_period_hours=SERVER_VALIDITY_HOURS,
        early_renewal_hours=EARLY_RENEWAL_HOURS,
        allowed_uses=["key_encipherment", "digital_signature", "server_auth"],
        opts=opts,
    )
    imported = aws.acm.Certificate(
        f"{name}-cert",
        private_key=key.private_key_pem,
        certificate_body=signed.cert_pem,
        certificate_chain=ca_cert.cert_pem,
        tags=tags,
        opts=opts,
    )
    return ImportedCertificate(ca_cert.cert_pem, imported.arn, signed.validity_end_time)
