"""Results: what the grid's fits and partitions produced, the rules that say which rows are
current, and the read-only views and selections that the CLI report and the app share.

- :mod:`core.results.selection`: every "best" (layer, instruction, map label) chosen by the
  cross-validated training score, never by the test score that reports it.
"""
