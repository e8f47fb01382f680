"""The lab: a whole cluster's parts on one machine, in network namespaces it makes and removes.

Root file systems built from Debian's packages (one per suite, cached), the deployment's
services stood up for real where a real one exists here, and nodes booted from the files
the cluster stage uploads. Used by the tests, the benchmarks and the ``lab.*`` tasks.
"""
