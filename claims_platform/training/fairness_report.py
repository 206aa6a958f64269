"""The group table as Dagster shows it (a table, an inline picture, a chart), its check and its alert.

The same for a candidate's holdout (`candidate_model`) and a scored month (`model_performance`): what is
measured is :mod:`claims_platform.training.fairness`; this module only presents it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from claims_platform.core.alerts import Alert, AlertsResource
from claims_platform.core.pictures import figure_markdown, sparkline_markdown
from claims_platform.training.fairness import FairnessTolerance, fairness_flags, table_records

FAIRNESS_CHECK = "fairness_within_tolerance"
FAIRNESS_CHECK_DESCRIPTION = (
    "No group of a protected column departs from the rest of its column, in calibration (realised minus expected "
    "claims) or decline rate, beyond its 95% interval (Bonferroni over the table) and the configured tolerance."
)
_SHOWN = {
    "column": "column",
    "group": "group",
    "applications": "applications",
    "decline_rate": "declined",
    "refer_rate": "referred",
    "claim_rate": "claim rate",
    "mean_probability": "mean probability",
    "kappa": "kappa",
    "auc": "AUC",
    "flag": "flag",
}


_TOLERANCE = FairnessTolerance()


class FairnessConfig(dg.Config):
    """The fairness check's tolerances (a config of the assets that report groups)."""

    fairness_calibration_tolerance: float = Field(
        default=_TOLERANCE.calibration,
        ge=0,
        le=1,
        description="Flag a protected group whose realised-minus-expected claim rate departs from the rest's by more "
        "than this (rate points) beyond its 95% interval.",
    )
    fairness_decline_tolerance: float = Field(
        default=_TOLERANCE.decline_rate,
        ge=0,
        le=1,
        description="Flag a protected group whose decline rate departs from the rest's by more than this (rate "
        "points) beyond its 95% interval.",
    )

    def fairness_tolerance(self) -> FairnessTolerance:
        return FairnessTolerance(
            calibration=self.fairness_calibration_tolerance, decline_rate=self.fairness_decline_tolerance
        )


def fairness_record(table: pd.DataFrame, tolerance: FairnessTolerance) -> dict[str, Any]:
    """What a record keeps of the table: the tolerance, the flags and every group's row."""
    return {"tolerance": tolerance.as_dict(), "flags": fairness_flags(table), "groups": table_records(table)}


def fairness_metadata(table: pd.DataFrame) -> dict[str, Any]:
    """The partition's fairness entries: the flags, the table with its intervals, an inline picture and a chart."""
    flags = fairness_flags(table)
    return {
        "fairness_flags": "; ".join(flags) if flags else "none",
        "fairness_groups": _metadata_table(table),
        # Inline: per group, the claim rate the model expects (line), where a calibrated model's realised
        # rate falls (band) and the realised rate (dots; red outside the band).
        "fairness_calibration": sparkline_markdown(
            table["mean_probability"].to_numpy(dtype="float64"),
            "claim rate by protected group: expected, its 95% band, realised",
            low=table["expected_low"].to_numpy(dtype="float64"),
            high=table["expected_high"].to_numpy(dtype="float64"),
            marks=table["claim_rate"].to_numpy(dtype="float64"),
        ),
        "fairness_plot": _fairness_plot(table),
    }


def _interval(row: Mapping, name: str, low: str, high: str) -> str:
    value = row[name]
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f} ({row[low]:.3f}–{row[high]:.3f})"


def _metadata_table(table: pd.DataFrame) -> dg.TableMetadataValue:
    rows = []
    for row in table.to_dict(orient="records"):
        rows.append(
            dg.TableRecord(
                {
                    "column": row["column"],
                    "group": row["group"],
                    "applications": int(row["applications"]),
                    "declined": _interval(row, "decline_rate", "decline_low", "decline_high"),
                    "referred": _interval(row, "refer_rate", "refer_low", "refer_high"),
                    "claim rate": _interval(row, "claim_rate", "claim_low", "claim_high"),
                    "mean probability": _interval(row, "mean_probability", "expected_low", "expected_high"),
                    "kappa": _interval(row, "kappa", "kappa_low", "kappa_high"),
                    "AUC": _interval(row, "auc", "auc_low", "auc_high"),
                    "flag": row["flag"] or "",
                }
            )
        )
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(shown, "int" if name == "applications" else "string")
            for name, shown in _SHOWN.items()
        ]
    )
    return dg.MetadataValue.table(rows, schema=schema)


def _fairness_plot(table: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """Per group: realised claim rate with its interval against the band a calibrated model allows, and
    the decline rate with its interval (one panel per protected column)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(dict.fromkeys(table["column"]))
    fig, axes = plt.subplots(
        2, len(columns), figsize=(3.2 * len(columns), 4.6), dpi=80, squeeze=False, sharey="row"
    )
    for i, column in enumerate(columns):
        part = table[table["column"] == column]
        x = np.arange(len(part))
        top, bottom = axes[0][i], axes[1][i]
        top.fill_between(
            x, part["expected_low"], part["expected_high"], alpha=0.25, step="mid", label="calibrated 95%"
        )
        top.errorbar(x, part["claim_rate"], yerr=_bars(part, "claim_rate", "claim_low", "claim_high"),
                     fmt="o", markersize=3, label="realised")  # fmt: skip
        bottom.errorbar(x, part["decline_rate"], yerr=_bars(part, "decline_rate", "decline_low", "decline_high"),
                        fmt="o", markersize=3, color="tab:red")  # fmt: skip
        for ax in (top, bottom):
            ax.set_xticks(x, part["group"], fontsize=7, rotation=90 if len(part) > 6 else 0)
        top.set_title(column, fontsize=9)
    axes[0][0].set_ylabel("claim rate")
    axes[1][0].set_ylabel("decline rate")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return figure_markdown(fig, "outcomes by protected group")


def _bars(part: pd.DataFrame, value: str, low: str, high: str) -> np.ndarray:
    return np.vstack([part[value] - part[low], part[high] - part[value]]).clip(min=0)


def fairness_check(table: pd.DataFrame, asset: str, where: str) -> dg.AssetCheckResult:
    """The warning-level check of ``asset``'s group table (``where``: "the holdout 2025-12", "2026-03")."""
    flags = fairness_flags(table)
    return dg.AssetCheckResult(
        check_name=FAIRNESS_CHECK,
        asset_key=asset,
        passed=not flags,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(flags) or f"every protected group within tolerance on {where}",
        metadata={"groups": len(table), "flagged": len(flags)},
    )


def fairness_not_measured(asset: str, why: str) -> dg.AssetCheckResult:
    """The check's result when there is no table to judge (a warning: nothing shows the groups are within
    tolerance)."""
    return dg.AssetCheckResult(
        check_name=FAIRNESS_CHECK,
        asset_key=asset,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"not measured: {why}",
    )


def fairness_alert(table: pd.DataFrame, what: str, fields: Mapping[str, str]) -> Alert | None:
    """The warning to send when a group is flagged (``what``: "candidate v7 on its holdout 2025-12"); else None."""
    flags = fairness_flags(table)
    if not flags:
        return None
    return Alert(
        "warning",
        f"Protected group outside tolerance: {what}",
        "; ".join(flags) + ". See the group table (fairness_groups) for each group's rates and intervals.",
        fields=dict(fields),
        dedupe_key=f"fairness:{what}",
    )


@dataclass(frozen=True)
class FairnessReport:
    """A group table as an asset reports it: for its record, its metadata, its check and its alert."""

    table: pd.DataFrame
    tolerance: FairnessTolerance
    asset: str
    where: str  # what the table was measured on: "the holdout 2025-04", "2025-05"
    what: str  # the alert's subject: "candidate v7 on its holdout 2025-04"
    fields: Mapping[str, str]

    def record(self) -> dict[str, Any]:
        return fairness_record(self.table, self.tolerance)

    def metadata(self) -> dict[str, Any]:
        return fairness_metadata(self.table)

    def check(self) -> dg.AssetCheckResult:
        return fairness_check(self.table, self.asset, self.where)

    def send_alert(self, alerts: AlertsResource, log: Any) -> None:
        """A warning to the alerts resource when a group is flagged; nothing otherwise."""
        alert = fairness_alert(self.table, self.what, self.fields)
        if alert is not None:
            alerts.send(alert, log=log)
