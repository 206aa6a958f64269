"""Ingestion: the day's applications read from the warehouse and held to the data contract."""
