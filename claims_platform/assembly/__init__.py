"""The assembly: sensors, the run launcher and launch-time config checks that tie the domains into one
Dagster code location (with ``claims_platform.definitions``)."""
