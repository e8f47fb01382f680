"""The custom AMI: fingerprint of its inputs, script upload, build-image driver."""
