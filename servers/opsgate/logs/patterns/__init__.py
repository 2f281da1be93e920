"""Log pattern mining: group log messages into templates with ``<*>`` where values vary.

A pure algorithm package (no I/O, no other opsgate imports) used by the logs capability.
"""

from opsgate.logs.patterns.miner import MinerConfig, Template, TemplateMiner, mine

__all__ = ["MinerConfig", "Template", "TemplateMiner", "mine"]
