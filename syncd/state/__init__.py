"""The state store: bindings, cursors, runs and control flags, in any SQL database."""

from syncd.state.store import BindingRow, Store

__all__ = ["BindingRow", "Store"]
