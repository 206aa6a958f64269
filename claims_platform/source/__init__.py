"""The world outside the platform: a simulated policy administration system and its warehouse.

- ``generator``: the deterministic, fixed-concept simulator (:class:`~.generator.World`,
  :func:`~.generator.simulate_day`).
- ``scenarios``: named drift scenarios switched on from a date.
- ``warehouse``: the SQLAlchemy warehouse (SQLite by default, PostgreSQL by URL).
- ``csv_parse`` → ``csv_check`` → ``csv_plan`` → ``csv_import``: load an export in the seed's CSV format:
  read it, check it, spread its rows over days, and write it (``csv_import`` has the whole);
- ``resources``: the warehouse as the platform's ``source`` resource.

Nothing heavy is imported here, so the CLI can list scenario names without loading pandas.
"""

# Names of the drift scenarios; ``scenarios.SCENARIOS`` is asserted to match.
SCENARIO_NAMES: tuple[str, ...] = ("income_shift", "mix_shift", "concept_shift", "data_quality", "risk_shift")
