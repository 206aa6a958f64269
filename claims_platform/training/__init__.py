"""Training the claim model.

The pure core — ``model_code``, ``features``, ``split``, ``train``, ``calibration``, ``metrics``,
``plots`` and ``packaging`` — imports no Dagster; importing this package imports nothing.
"""
