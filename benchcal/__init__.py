"""benchcal: calibrate benchmark suites against training FLOPs.

This package is the light shared core (task registry, CalibrationRun spec, results schema,
CLI dispatch). The heavy components live in their own import packages:
``benchcal_eval`` (torch), ``benchcal_reduce`` (pandas/scipy), ``benchcal_operator`` (kopf).
"""

__version__ = "0.1.0"
