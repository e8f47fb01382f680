"""See before you spend: the deployment's architecture diagram and its cost estimate.

- ``resources``: the bill of materials (what is billable, how many while idle and at max);
- ``catalogue``: which Price List API product prices each kind of resource;
- ``prices``: the API client, the dated on-disk cache, offline credential detection;
- ``cost``: the arithmetic and the ``cost.json`` document;
- ``diagram``: the architecture drawn with ``diagrams`` (Graphviz).

The plan steps that use them are ``pwbcluster.pipeline.plan_estimate``.
"""
