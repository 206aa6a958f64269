"""claims_platform: the Dagster code location of an insurer's claim-likelihood model.

One process-wide default is set here, because it must be in place before LightGBM is first loaded
and every process of the platform imports this package first: OpenMP threads WAIT PASSIVELY. By
default they spin at every barrier, and on a machine busier than its cores (a code server, a
daemon and a run on two cores) that made a two-thread LightGBM fit 10-100x slower. The platform's
own fits run on one thread (``TrainingConfig.num_threads``; docs/models.md, "Threads"), so this
guards multi-threaded LightGBM calls and a ``num_threads`` raised by hand. Set the variable yourself
to override it.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
