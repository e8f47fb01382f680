"""Where the users' passwords are kept: one Secrets Manager secret (default) or a file.

The whole batch lives in one JSON document ``{"version": 1, "users": {name: password}}``.
Passwords are written BEFORE the directory is changed, so a run that dies half-way
leaves no account whose password is lost: the next run reuses the stored ones.
Nothing here logs or prints a password.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pwbcluster.errors import ToolkitError

log = logging.getLogger(__name__)

SECRET_MAX_BYTES = 65536  # Secrets Manager's limit for one secret value


class StoreError(ToolkitError):
    """The password store could not be read or written."""


class PasswordStore(Protocol):
    def load(self) -> dict[str, str]: ...

    def save(self, passwords: dict[str, str]) -> None: ...

    def describe(self) -> str: ...


def encode(passwords: dict[str, str]) -> str:
    return json.dumps({"version": 1, "users": dict(sorted(passwords.items()))}, indent=None)


def decode(text: str, where: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
        users = doc["users"]
        if not isinstance(users, dict):
            raise TypeError("users is not an object")
        return {str(k): str(v) for k, v in users.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{where} does not hold a pwb-users password document ({type(exc).__name__}); "
            "refusing to overwrite it"
        ) from None


class SecretsManagerStore:
    """One Secrets Manager secret holds the batch (the deployment's users secret)."""

    def __init__(self, arn: str, region: str | None = None, client: Any = None) -> None:
        self.arn = arn
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", region_name=region or _arn_region(arn))
        self.client = client

    def describe(self) -> str:
        return f"Secrets Manager secret {self.arn}"

    def load(self) -> dict[str, str]:
        try:
            value = self.client.get_secret_value(SecretId=self.arn)
        except self.client.exceptions.ResourceNotFoundException:
            # The services stage creates the secret with no value; the first run writes it.
            return {}
        except Exception as exc:
            raise StoreError(f"cannot read {self.describe()}: {exc}") from None
        return decode(value.get("SecretString") or "", self.describe())

    def save(self, passwords: dict[str, str]) -> None:
        text = encode(passwords)
        if len(text.encode()) > SECRET_MAX_BYTES:
            raise StoreError(
                f"{len(passwords)} passwords need {len(text.encode())} bytes, more than one "
                f"secret holds ({SECRET_MAX_BYTES}); use --password-store file:PATH or fewer users"
            )
        try:
            self.client.put_secret_value(SecretId=self.arn, SecretString=text)
        except Exception as exc:
            raise StoreError(f"cannot write {self.describe()}: {exc}") from None


class FileStore:
    """A JSON file readable by its owner only (mode 0600), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"file {self.path}"

    def load(self) -> dict[str, str]:
        try:
            return decode(self.path.read_text(encoding="utf-8"), self.describe())
        except FileNotFoundError:
            return {}

    def save(self, passwords: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pwb-users.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(encode(passwords))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


def open_store(spec: str, region: str | None = None) -> PasswordStore:
    """``secretsmanager:ARN`` (or a bare ARN) or ``file:PATH``."""
    if spec.startswith("file:"):
        return FileStore(Path(spec[5:]))
    arn = spec[len("secretsmanager:") :] if spec.startswith("secretsmanager:") else spec
    if not arn.startswith("arn:"):
        raise StoreError(f"password store {spec!r}: use secretsmanager:ARN or file:PATH")
    return SecretsManagerStore(arn, region)


def read_admin_password(
    secret_arn: str | None, password_file: str | None, region: str | None = None
) -> str:
    """The directory administrator's password: Secrets Manager, a file, or the
    PWB_USERS_ADMIN_PASSWORD environment variable; never a command-line argument."""
    if secret_arn:
        import boto3

        client = boto3.client("secretsmanager", region_name=region or _arn_region(secret_arn))
        try:
            text = client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
        except Exception as exc:
            raise StoreError(f"cannot read the administrator secret {secret_arn}: {exc}") from None
        if text.lstrip().startswith("{"):
            try:
                text = str(json.loads(text)["password"])
            except (ValueError, KeyError):
                raise StoreError(f"{secret_arn}: JSON secret without a 'password' key") from None
        return text
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise StoreError(f"cannot read the administrator password file: {exc}") from None
    env = os.environ.get("PWB_USERS_ADMIN_PASSWORD")
    if env:
        return env
    raise StoreError(
        "no administrator password: give --admin-secret-arn (Secrets Manager), "
        "--admin-password-file, or set PWB_USERS_ADMIN_PASSWORD"
    )
