"""Inspection checks: each acquires numbers, evaluates thresholds, presents a line.

See :mod:`checks.base` for the contract and :mod:`checks.registry` for the table of
``type:`` names. This package knows nothing of the agent that runs it.
"""
