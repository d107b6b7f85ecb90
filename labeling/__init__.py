"""Galaxy Inclination Zoo: standards, assignment, two-step measurement, consensus, calibration."""
