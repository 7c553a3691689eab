"""One module per part of a scenario file: its key tables and the parser that reads them.

Each section exposes a :class:`~simulator.scenario.fields.Kind` (its parser and its JSON Schema)
that the document table of :mod:`simulator.scenario.loader` names.
"""
