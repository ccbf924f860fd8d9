"""The issue-5 benchmark: a real uptimed process checking a local target, measured from outside.

Entry point: ``python benchmarks/run.py`` (see ``benchmarks/README.md``).
"""
