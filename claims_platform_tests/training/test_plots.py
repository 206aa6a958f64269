from __future__ import annotations

from claims_platform import schema
from claims_platform.training import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_are_small_pngs(trained, parts):
    y = parts.holdout[schema.CLAIM_STATUS]
    p = trained.predict_proba(parts.holdout)
    images = [
        plots.roc_curve_png(y, {"candidate": p, "champion": p**1.1}),
        plots.calibration_png(y, p),
        plots.feature_importance_png(trained.booster),
    ]
    for image in images:
        assert image.startswith(PNG_MAGIC)
        assert 2_000 < len(image) < 150_000
