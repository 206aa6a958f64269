"""Training the claim model: the point-in-time training set and the month's candidate model.

The pure core — ``dataset``, ``features``, ``split``, ``train``, ``calibration``, ``metrics`` and
``plots`` — imports no Dagster; importing this package imports nothing.
"""
