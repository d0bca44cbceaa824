"""The composition layer: the ``benchcal`` command (``cli``) and ``benchcal run`` (``local_run``).

The only part of the ``benchcal`` package that may reach into the components (``benchcal_eval``,
``benchcal_reduce``, ``benchcal_operator``); everything else under ``benchcal/`` is the light core
and imports none of them (checked by import-linter, see ``[tool.importlinter]`` in pyproject.toml).
"""
