"""The contract for plugin authors: the hooks (:mod:`~syncd.plugin.hookspecs`), the
plugin manager that loads the ``syncd`` entry-point group (:mod:`~syncd.plugin.manager`),
the connector base class and its records, pages and errors
(:mod:`~syncd.plugin.connector`), and field transforms (:mod:`~syncd.plugin.transforms`).
"""
