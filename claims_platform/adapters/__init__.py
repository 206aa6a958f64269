"""The only modules that touch private (``_``-prefixed) APIs of Dagster, MLflow and Evidently, one per
library; each function says why no public API serves, and a test pins the behaviour it relies on."""
