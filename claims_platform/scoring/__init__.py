"""Nightly scoring: the model in force per day, decisions, and the claims-reserve forecast."""
