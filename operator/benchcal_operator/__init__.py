"""benchcal operator: kopf controller for CalibrationRun."""
