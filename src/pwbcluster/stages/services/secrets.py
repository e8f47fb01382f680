"""Generated secrets kept in Secrets Manager: there are no default passwords.

``GeneratedSecret`` draws a random value (pulumi_random, so it is a secret in Pulumi's
state too) and stores it as the plain-string value of a Secrets Manager secret, the form
ParallelCluster's ``PasswordSecretArn`` settings and the node scripts read. With
``length=0`` only the secret is created and another stage writes its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi_aws as aws
import pulumi_random as random

import pulumi

# Characters every consumer accepts: RDS refuses / @ " and space, shells and URLs dislike
# others. Upper, lower, digit and special are all required (AD complexity rules). No "#":
# ParallelCluster writes the accounting database's password into slurmdbd.conf as it is
# (the cookbook's update_slurm_database_password.sh), and Slurm's config parser ends a
# line at an unescaped "#" (src/common/parse_config.c, _strip_comments): slurmdbd would
# log in with the part before it.
SAFE_SPECIALS = "!%^*-_=+"


@dataclass(frozen=True)
class GeneratedSecretArgs:
    deployment: str
    purpose: str  # e.g. workbench-db-password; names the secret <deployment>/<purpose>
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)
    length: int = 32
    special: bool = True
    # 0: deleted at once, so `down` then `up` can reuse the name (AWS refuses to create a
    # secret whose name is scheduled for deletion); 7-30: recoverable that long.
    recovery_window_days: int = 0


class GeneratedSecret(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    # The generated value, always a secret output (None when length == 0).
    value: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: GeneratedSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pwbcluster:aux:GeneratedSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"pwbcluster/{args.deployment}/{args.purpose}",
            description=args.description,
            recovery_window_in_days=args.recovery_window_days,
            tags={**dict(args.tags), "Name": f"{args.deployment}-{args.purpose}"},
            opts=child,
        )
        self.arn = secret.arn
        self.value = None
        if args.length:
            password = random.RandomPassword(
                f"{name}-value",
                length=args.length,
                special=args.special,
                override_special=SAFE_SPECIALS if args.special else None,
                min_upper=2,
                min_lower=2,
                min_numeric=2,
                min_special=2 if args.special else 0,
                opts=child,
            )
            self.value = pulumi.Output.secret(password.result)
            aws.secretsmanager.SecretVersion(
                f"{name}-version",
                secret_id=secret.id,
                secret_string=self.value,
                opts=pulumi.ResourceOptions(parent=secret),
            )
        self.register_outputs({"arn": self.arn})
