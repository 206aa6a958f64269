from __future__ import annotations

import numpy as np

from claims_platform.core import schema
from claims_platform.models.importance import shap_importance
from claims_platform.training import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_are_small_pngs(trained, parts):
    y = parts.holdout[schema.CLAIM_STATUS]
    p = trained.predict_proba(parts.holdout)
    images = [
        plots.roc_curve_png(y, {"candidate": p, "champion": p**1.1}),
        plots.calibration_png(y, p),
        plots.feature_importance_png(shap_importance(trained.booster, trained.spec, parts.holdout)["shares"]),
    ]
    for image in images:
        assert image.startswith(PNG_MAGIC)
        assert 2_000 < len(image) < 150_000


def test_the_candidate_page_shows_a_reliability_sparkline_inline():
    """The UI shows markdown inline only when short: the candidate's small reliability picture is."""
    from claims_platform.core.pictures import is_inline
    from claims_platform.models.candidate import _reliability_sparkline

    rng = np.random.default_rng(1)
    p = rng.beta(1, 6, 5_000)
    y = (rng.random(5_000) < p).astype(int)
    picture = _reliability_sparkline(y, p)
    assert is_inline(picture) and picture.md_str.startswith("![predicted probability")
