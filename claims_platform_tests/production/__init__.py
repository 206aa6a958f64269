"""The production profile end to end on real services on loopback (issue 11): PostgreSQL, an S3 API server,
an MLflow tracking server, a code server, `dagster-webserver` and `dagster-daemon`, driven through GraphQL."""
