"""What a registered model is: how it is packaged, loaded, judged and promoted.

- ``runtime``: the code that ships INSIDE every registered model (features, calibration,
  prediction, the contract check); self-contained, it never imports ``claims_platform``;
- ``pyfunc``: the MLflow pyfunc wrapper logged with each model;
- ``packaging``: log and register a trained model (typed signature, synthetic example);
- ``loading``: a version's scorer from its files, with its own shipped runtime;
- ``registry``: the MLflow registry resource (versions, tags, the alias projection);
- ``tracking``: dagster-mlflow's tracking resource, with our artifact location;
- ``policy``: the ONE decision policy (accept / refer / decline) used by scoring and promotion;
- ``champion``: the champion chain as pure functions (gate, paired comparison, rollback);
- ``assets`` / ``jobs``: the Dagster layer (champion decision, model in force, rollback).

Importing this package imports nothing.
"""
