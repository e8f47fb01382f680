"""Auxiliary services (Pulumi): network, directory, databases, bucket, secrets, IAM, jump host."""
