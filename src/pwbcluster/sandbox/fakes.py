"""Plausible outputs for every resource type the aux programs create, without any cloud.

``OfflineMocks`` answers each registration with an AWS-shaped id and the attributes AWS
would compute (ARNs, DNS names, addresses), random values for pulumi_random, and real
keys, CSRs and certificates for pulumi_tls (made with ``cryptography``), so that a
rendered ``LdapTlsCaCert`` is a real PEM. The tests use it directly; the sandbox uses it
for resources moto cannot create and reports those as simulated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

import pulumi
from pwbcluster.contracts import STAND_IN_ACCOUNT
from pwbcluster.sandbox.mockrun import unwrap_secrets

ACCOUNT = STAND_IN_ACCOUNT


def _suffix(seed: str, n: int = 17) -> str:
    return hashlib.sha256((seed + secrets.token_hex(4)).encode()).hexdigest()[:n]


def _name_from(inputs: dict[str, Any], name: str, key: str = "name") -> str:
    if inputs.get(key):
        return str(inputs[key])
    prefix = inputs.get(f"{key}Prefix") or inputs.get("bucketPrefix") or f"{name}-"
    return f"{prefix}{_suffix(name, 8)}"


def _key_pair(algorithm: str) -> dict[str, str]:
    # RSA keys are 2048 bits whatever was asked: a simulation need not pay for 4096.
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return {
        "privateKeyPem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "privateKeyOpenssh": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ).decode(),
        "publicKeyOpenssh": key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + "\n",
        "publicKeyPem": key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


def _load_key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _subject(inputs: dict[str, Any]) -> x509.Name:
    subject = inputs.get("subject") or {}
    if isinstance(subject, list):
        subject = subject[0] if subject else {}
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject.get("commonName") or "pwbcluster")]
    if subject.get("organization"):
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    return x509.Name(attrs)


def _certificate(
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    signing_key: Any,
    hours: float,
    ca: bool,
    dns_names: list[str] | None = None,
) -> str:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=hours))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    cert = builder.sign(signing_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def tls_state(typ: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Real PEMs for pulumi_tls resources."""
    if typ == "tls:index/privateKey:PrivateKey":
        return _key_pair(str(inputs.get("algorithm") or "RSA"))
    if typ == "tls:index/selfSignedCert:SelfSignedCert":
        key = _load_key(inputs["privateKeyPem"])
        name = _subject(inputs)
        hours = float(inputs.get("validityPeriodHours") or 24)
        ca = bool(inputs.get("isCaCertificate"))
        return {"certPem": _certificate(name, key.public_key(), name, key, hours, ca)}
    if typ == "tls:index/certRequest:CertRequest":
        key = _load_key(inputs["privateKeyPem"])
        names = [n for n in inputs.get("dnsNames") or [] if n]
        builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(inputs))
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
        return {"certRequestPem": pem}
    if typ == "tls:index/locallySignedCert:LocallySignedCert":
        request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        ca_key = _load_key(inputs["caPrivateKeyPem"])
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = list(sans.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            names = []
        hours = float(inputs.get("validityPeriodHours") or 24)
        cert = _certificate(
            request.subject, request.public_key(), ca_cert.subject, ca_key, hours, False, names
        )
        # What the provider computes: the validity read from the certificate it signed.
        signed = x509.load_pem_x509_certificate(cert.encode())
        return {
            "certPem": cert,
            "validityStartTime": signed.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validityEndTime": signed.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "readyForRenewal": False,
        }
    raise KeyError(typ)


def random_password(inputs: dict[str, Any]) -> str:
    """A value as pulumi_random's RandomPassword draws it from its inputs: its length, its
    classes (specials from ``overrideSpecial`` when given) and each class's minimum, so
    that every consumer downstream sees the characters a real deployment's passwords hold."""
    classes = {
        "upper": (string.ascii_uppercase, inputs.get("upper", True), inputs.get("minUpper", 0)),
        "lower": (string.ascii_lowercase, inputs.get("lower", True), inputs.get("minLower", 0)),
        "numeric": (string.digits, inputs.get("numeric", True), inputs.get("minNumeric", 0)),
        "special": (
            inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?",
            inputs.get("special", True),
            inputs.get("minSpecial", 0),
        ),
    }
    length = int(inputs.get("length") or 32)
    chosen = [
        secrets.choice(chars)
        for chars, on, least in classes.values()
        if on
        for _ in range(int(least or 0))
    ]
    alphabet = "".join(chars for chars, on, _ in classes.values() if on)
    chosen += [secrets.choice(alphabet) for _ in range(length - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def plausible(
    typ: str, name: str, inputs: dict[str, Any], region: str, account: str = ACCOUNT
) -> tuple[str, dict[str, Any]]:
    """An id and the computed attributes AWS (or the provider) would return."""
    inputs, _ = unwrap_secrets(dict(inputs))
    state = dict(inputs)
    arn_base = f"arn:aws:{{}}:{region}:{account}:"
    sfx = _suffix(name)
    if typ.startswith("tls:"):
        state.update(tls_state(typ, inputs))
        return f"{name}-{sfx[:8]}", state
    if typ == "random:index/randomPassword:RandomPassword":
        state["result"] = random_password(inputs)
        return f"{name}-none", state
    prefixes = {
        "aws:ec2/vpc:Vpc": "vpc",
        "aws:ec2/subnet:Subnet": "subnet",
        "aws:ec2/internetGateway:InternetGateway": "igw",
        "aws:ec2/eip:Eip": "eipalloc",
        "aws:ec2/natGateway:NatGateway": "nat",
        "aws:ec2/routeTable:RouteTable": "rtb",
        "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
        "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
        "aws:ec2/securityGroup:SecurityGroup": "sg",
        "aws:ec2/instance:Instance": "i",
    }
    if typ in prefixes:
        rid = f"{prefixes[typ]}-{sfx}"
        state["arn"] = arn_base.format("ec2") + f"{prefixes[typ]}/{rid}"
        if typ == "aws:ec2/instance:Instance":
            state["privateIp"] = "10.20.128.20"
        if typ == "aws:ec2/eip:Eip":
            state["publicIp"] = "198.51.100.10"
        return rid, state
    if typ == "aws:ec2/route:Route":
        return f"r-{sfx}", state
    if typ == "aws:ec2/keyPair:KeyPair":
        key_name = _name_from(inputs, name, "keyName")
        state.update(keyName=key_name, arn=arn_base.format("ec2") + f"key-pair/{key_name}")
        return key_name, state
    if typ == "aws:s3/bucket:Bucket":
        bucket = _name_from(inputs, name, "bucket")
        state.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        return bucket, state
    if typ.startswith("aws:s3/"):
        return str(inputs.get("bucket") or name), state
    if typ.startswith("aws:iam/"):
        kind = typ.rsplit(":", 1)[1]
        if kind in ("Policy", "Role", "InstanceProfile"):
            resource_name = _name_from(inputs, name)
            path = {"Policy": "policy", "Role": "role", "InstanceProfile": "instance-profile"}
            state.update(
                name=resource_name,
                arn=f"arn:aws:iam::{account}:{path[kind]}/{resource_name}",
            )
            return (state["arn"] if kind == "Policy" else resource_name), state
        return f"{name}-{sfx[:8]}", state
    if typ == "aws:secretsmanager/secret:Secret":
        secret_name = _name_from(inputs, name)
        arn = arn_base.format("secretsmanager") + f"secret:{secret_name}-{sfx[:6]}"
        state.update(name=secret_name, arn=arn)
        return arn, state
    if typ == "aws:secretsmanager/secretVersion:SecretVersion":
        state["versionId"] = sfx
        return f"{inputs.get('secretId')}|{sfx}", state
    if typ == "aws:directoryservice/directory:Directory":
        state.update(
            dnsIpAddresses=["10.20.128.10", "10.20.144.10"],
            securityGroupId=f"sg-{sfx}",
            accessUrl=f"d-{sfx[:10]}.awsapps.com",
        )
        return f"d-{sfx[:10]}", state
    if typ.startswith("aws:lb/"):
        kind = typ.rsplit(":", 1)[1]
        short = f"{name[:20]}-{sfx[:6]}"
        if kind == "LoadBalancer":
            arn = arn_base.format("elasticloadbalancing") + f"loadbalancer/net/{short}/{sfx}"
            state.update(arn=arn, dnsName=f"{short}-{sfx[:10]}.elb.{region}.amazonaws.com")
            return arn, state
        if kind == "TargetGroup":
            arn = arn_base.format("elasticloadbalancing") + f"targetgroup/{short}/{sfx}"
            state.update(arn=arn, name=short)
            return arn, state
        if kind == "Listener":
            arn = arn_base.format("elasticloadbalancing") + f"listener/net/{short}/{sfx}"
            state["arn"] = arn
            return arn, state
        return f"{name}-{sfx[:8]}", state
    if typ == "aws:acm/certificate:Certificate":
        arn = arn_base.format("acm") + f"certificate/{sfx}"
        state["arn"] = arn
        return arn, state
    if typ.startswith("aws:rds/"):
        kind = typ.rsplit(":", 1)[1]
        if kind == "Instance":
            ident = _name_from(inputs, name, "identifier")
            address = f"{ident}.c{sfx[:11]}.{region}.rds.amazonaws.com"
            state.update(
                identifier=ident,
                address=address,
                endpoint=f"{address}:{int(inputs.get('port') or 5432)}",
                arn=arn_base.format("rds") + f"db:{ident}",
            )
            return ident, state
        resource_name = _name_from(inputs, name)
        state.update(name=resource_name, arn=arn_base.format("rds") + f"x:{resource_name}")
        return resource_name, state
    return f"{name}-{sfx[:8]}", state


def plausible_call(token: str, args: dict[str, Any], region: str) -> dict[str, Any]:
    """Answers for the data sources (invokes) the programs use."""
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{region}{z}" for z in "abc"]
        return {"names": names, "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)], "id": region}
    if token == "aws:ec2/getAmi:getAmi":
        return {"id": "ami-0fa0ffa0ffa0ffa00", "name": "ubuntu (simulated)"}
    if token == "aws:ec2/getVpc:getVpc":
        return {"id": args.get("id"), "cidrBlock": "10.99.0.0/16"}
    if token == "aws:ec2/getSubnet:getSubnet":
        sid = str(args.get("id"))
        zone = "ab"[int(sid[-1], 16) % 2] if sid[-1:] in string.hexdigits else "a"
        return {"id": sid, "availabilityZone": f"{region}{zone}"}
    return {}


class OfflineMocks(pulumi.runtime.Mocks):
    """Plausible outputs for everything; records simulated resources by URN-less name."""

    def __init__(self, region: str = "eu-west-1") -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        return plausible(args.typ, args.name, dict(args.inputs), self.region)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return plausible_call(args.token, dict(args.args), self.region), []
