"""The application: the `claims-platform` command line, the demo and the local dev servers (the top layer)."""
