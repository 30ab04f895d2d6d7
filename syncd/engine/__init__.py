"""The sync engine: the only code that knows the sync rules.

:class:`PairRunner` runs a configured pair against a state store; planning
(:mod:`syncd.engine.plan`) and applying (:mod:`syncd.engine.apply`) are separate so
each can be read and tested on its own.
"""

from syncd.engine.runner import PairRunner, RunResult

__all__ = ["PairRunner", "RunResult"]
