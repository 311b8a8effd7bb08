"""The local Redis Cluster of the tests is the pytest plugin's
(``redisprep.testing.cluster``, which ``factories.cluster()`` starts)."""

from __future__ import annotations

from redisprep.testing.cluster import LocalCluster, cluster_port

__all__ = ["LocalCluster", "cluster_port"]
