"""Stages of a deployment, their typed contracts, and the runner that wires them."""
