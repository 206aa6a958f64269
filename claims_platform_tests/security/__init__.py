"""Security checks: no credentials in the repository, no secret in what the platform records, audited dependencies."""
