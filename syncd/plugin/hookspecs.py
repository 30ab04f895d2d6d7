"""The plugin contract: the hooks a syncd plugin may implement.

A plugin is a module registered in the ``syncd`` entry-point group::

    [project.entry-points.syncd]
    mycrm = "syncd_mycrm"

and implements hooks with :data:`syncd.hookimpl`::

    from syncd import hookimpl

    @hookimpl
    def syncd_connectors():
        return [MyCrmConnector]

Hooks only *register* things; behaviour lives on the classes they return. New
arguments are only ever added in a way old plugins can ignore (pluggy passes a hook
implementation only the arguments it names).

**Versions.** :data:`API_VERSION` numbers this contract (the hooks, the
:class:`~syncd.plugin.connector.Connector` base class and the conformance suite of
:mod:`syncd.testing`). It grows when something is added that a plugin may rely on. A
plugin module states what it needs with a module attribute ``SYNCD_API = N``; syncd
refuses (and reports, naming the package) a plugin that needs a newer API than it
has, instead of failing later in the middle of a run.

API 2 adds the context a connector is opened with (:mod:`syncd.plugin.context`):
its own durable key-value store, a bound logger and the clock, read as
``self.context``. Nothing an API 1 connector does changes: it may ignore the context.
"""

from __future__ import annotations

import pluggy

from syncd.plugin.connector import Connector
from syncd.plugin.transforms import Transform

#: The version of the plugin API this syncd provides (see the module docs).
API_VERSION = 2

hookspec = pluggy.HookspecMarker("syncd")
hookimpl = pluggy.HookimplMarker("syncd")


@hookspec
def syncd_connectors() -> list[type[Connector]]:  # type: ignore[empty-body]
    """Return the connector classes this plugin provides.

    Each class subclasses :class:`syncd.plugin.connector.Connector` and sets a unique ``type``
    (the name used as ``type = "..."`` in a ``[connectors.NAME]`` table) and a
    ``Settings`` model. Called once when syncd loads its plugins.
    """


@hookspec
def syncd_transforms() -> list[Transform]:  # type: ignore[empty-body]
    """Return the field transforms this plugin provides.

    Each :class:`syncd.plugin.transforms.Transform` has a unique ``name`` (what a pair writes
    in ``[pairs.NAME.transforms.ENTITY]``), an idempotent function of one value and an
    optional argument, and a one-line description for ``syncd plugins``. Called once
    when syncd loads its plugins. Added in plugin API 1.
    """
