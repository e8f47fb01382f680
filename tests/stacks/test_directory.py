"""Directory traffic is encrypted: both directory types get the LDAPS front unless opted out."""

from __future__ import annotations

import logging

import pytest
from cryptography import x509

from pwbcluster.sandbox.fakes import OfflineMocks
from pwbcluster.sandbox.mockrun import run_with_mocks
from pwbcluster.stages.network.args import network_args
from pwbcluster.stages.network.program import network_program

from .conftest import Deployed, _no_ldaps, _variant, deploy


@pytest.mark.parametrize("variant", ["default", "managed-ad"])
def test_directory_gets_a_tls_front(deployments: dict[str, Deployed], variant: str) -> None:
    d = deployments[variant]
    s = d.services
    directory = d.one("directoryservice/directory:Directory")
    expected_type = "MicrosoftAD" if variant == "managed-ad" else "SimpleAD"
    assert directory.inputs["type"] == expected_type, directory.urn
    assert s.directory_type == expected_type
    nlb = d.one("lb/loadBalancer:LoadBalancer")
    assert nlb.inputs["internal"] is True, f"{nlb.urn}: the LDAPS front is not internal"
    assert nlb.inputs["loadBalancerType"] == "network", nlb.urn
    listener = d.one("lb/listener:Listener")
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (636, "TLS"), listener.urn
    (cert,) = [c for c in d.of_type("acm/certificate:Certificate") if "LdapTlsFront" in c.urn]
    assert listener.inputs["certificateArn"] == cert.outputs["arn"], listener.urn
    assert "privateKey" in cert.secret_inputs, f"{cert.urn}: private key not secret"
    group = d.one("lb/targetGroup:TargetGroup")
    assert (group.inputs["port"], group.inputs["protocol"]) == (389, "TCP"), group.urn
    assert listener.inputs["defaultActions"][0]["targetGroupArn"] == group.outputs["arn"]
    targets = sorted(a.inputs["targetId"] for a in d.of_type("TargetGroupAttachment"))
    assert targets == sorted(s.directory_dns_addresses), f"{group.urn}: targets {targets}"
    # The address handed on is the front's, over TLS, and its certificate names it.
    host = nlb.outputs["dnsName"]
    assert s.ldap_uri == f"ldaps://{host}" and s.ldap_tls is True
    ca = x509.load_pem_x509_certificate(s.ldap_ca_cert_pem.encode())
    assert cert.inputs["certificateChain"] == s.ldap_ca_cert_pem, cert.urn
    server = x509.load_pem_x509_certificate(cert.inputs["certificateBody"].encode())
    assert server.issuer == ca.subject, f"{cert.urn}: not issued by the generated CA"
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in sans.get_values_for_type(x509.DNSName), f"{cert.urn}: {host} not named"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # The bind user is the dedicated read-only account, never the administrator.
    assert "administrator" not in s.bind_user_dn.lower()
    assert s.bind_password_secret_arn != s.admin_password_secret_arn


def test_managed_ad_binds_in_its_own_ou(deployments: dict[str, Deployed]) -> None:
    s = deployments["managed-ad"].services
    assert s.bind_user_dn == "CN=pcluster-ldap-ro,OU=Users,OU=PWB,DC=pwb,DC=posit,DC=co"
    directory = deployments["managed-ad"].one("directoryservice/directory:Directory")
    assert directory.inputs["edition"] == "Standard", directory.urn
    (jump,) = [
        r for r in deployments["managed-ad"].registered if r.type == "aws:ec2/instance:Instance"
    ]
    user_data = jump.inputs["userData"]
    assert "ADMIN_USER=Admin\n" in user_data, f"{jump.urn}: Managed AD's admin is Admin"
    assert "USERS_OU=OU=Users,OU=PWB,DC=pwb,DC=posit,DC=co\n" in user_data, jump.urn
    (simple,) = [
        r for r in deployments["default"].registered if r.type == "aws:ec2/instance:Instance"
    ]
    assert "ADMIN_USER=Administrator\n" in simple.inputs["userData"], simple.urn


def test_plain_ldap_only_when_opted_out_with_a_warning(
    base_config: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pwbcluster.stages.services.directory"):
        d = deploy(_variant(base_config, _no_ldaps))  # type: ignore[arg-type]
    assert not d.of_type("lb/loadBalancer:LoadBalancer"), "a TLS front without ldaps"
    assert not [c for c in d.of_type("acm/certificate:Certificate") if "LdapTlsFront" in c.urn]
    assert d.services.ldap_tls is False and d.services.ldap_ca_cert_pem == ""
    assert d.services.ldap_uri.startswith("ldap://"), d.services.ldap_uri
    assert "clear text" in caplog.text


def test_existing_vpc_is_used_not_created(deployments: dict[str, Deployed]) -> None:
    d = deployments["existing-vpc"]
    created = [
        r.urn for r in d.registered if r.type in ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet")
    ]
    assert created == [], f"created network resources for an existing VPC: {created}"
    assert not d.of_type("natGateway:NatGateway")
    assert d.network.vpc_id == "vpc-0123456789abcdef0"
    assert d.network.private_subnet_ids == ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
    assert len(set(d.network.availability_zones)) == 2
    directory = d.one("directoryservice/directory:Directory")
    assert directory.inputs["vpcSettings"]["subnetIds"] == list(d.network.private_subnet_ids)


def test_existing_vpc_needs_two_private_subnets(base_config: object) -> None:
    def one_subnet(data: dict) -> None:
        data["aux"]["network"]["vpc_id"] = "vpc-0123456789abcdef0"
        data["aux"]["network"]["private_subnet_ids"] = ["subnet-0123456789abcdef0"]

    config = _variant(base_config, one_subnet)  # type: ignore[arg-type]
    net_args = network_args(config.model, config.tags())
    with pytest.raises(ValueError, match="at least two private subnets"):
        run_with_mocks(lambda: network_program(net_args), OfflineMocks(), "test", "bad")


def test_created_network_spans_two_zones_with_nat(default: Deployed) -> None:
    subnets = default.of_type("ec2/subnet:Subnet")
    assert len(subnets) == 4
    for subnet in subnets:
        # Public subnets (the login pool) give their instances an address of their own;
        # private ones (head, compute, services) go out through the NAT gateway.
        public = "-public-" in subnet.name
        assert subnet.inputs["mapPublicIpOnLaunch"] is public, subnet.urn
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 2
    nat = default.one("natGateway:NatGateway")
    public_ids = set(default.network.public_subnet_ids)
    assert nat.inputs["subnetId"] in public_ids, f"{nat.urn}: NAT not in a public subnet"
    routes = {r.inputs["routeTableId"]: r.inputs for r in default.of_type("ec2/route:Route")}
    assert any(r.get("natGatewayId") == nat.id for r in routes.values()), "no route via NAT"


def test_workbench_gets_a_certificate_its_nodes_can_check(
    deployments: dict[str, Deployed],
) -> None:
    """HTTPS by default: a certificate from a CA of its own (not the directory's), naming
    the login balancer's AWS names, so sessions calling back through it pass the check."""
    d = deployments["default"]
    s = d.services
    (cert,) = [c for c in d.of_type("acm/certificate:Certificate") if "workbench-tls" in c.urn]
    assert s.workbench_certificate_arn == cert.outputs["arn"]
    assert "privateKey" in cert.secret_inputs, f"{cert.urn}: private key not secret"
    ca = x509.load_pem_x509_certificate(s.workbench_ca_cert_pem.encode())
    assert s.workbench_ca_cert_pem != s.ldap_ca_cert_pem
    server = x509.load_pem_x509_certificate(cert.inputs["certificateBody"].encode())
    assert server.issuer == ca.subject
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["*.elb.eu-west-1.amazonaws.com"]


def test_your_own_certificate_or_plain_http_generates_none(base_config: object) -> None:
    def own(data: dict) -> None:
        data["cluster"]["workbench"].update(
            tls_certificate_arn=(
                "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-2222-4000-8000-0002"
            ),
            hostname="wb.example.com",
        )

    def plain(data: dict) -> None:
        data["cluster"]["workbench"]["tls"] = False

    for change in (own, plain):
        d = deploy(_variant(base_config, change))  # type: ignore[arg-type]
        assert not [c for c in d.of_type("acm/certificate:Certificate") if "workbench" in c.urn]
        assert d.services.workbench_certificate_arn == ""
