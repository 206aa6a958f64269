"""A model card per registered version: what the model is for, what it was trained and judged on, how well
it does and for whom, what it cannot do, and how it compares with the champion it was judged against.

Generated from what was measured, never typed by hand: the candidate's record (holdout metrics with their
intervals, calibration, importance, the group table), its training set's lineage and feature spec, and,
once the champion decision has judged it, that decision's comparison. :func:`card_sections` gathers the
facts; :func:`card_markdown` and :func:`card_html` render the same sections (the HTML is self-contained:
its calibration curve is inlined, no script, no network). The candidate logs both to its MLflow run
(``model_card/model_card.md`` and ``.html``, the version's files); the champion decision writes them again
with its comparison. ``claims-platform model-card VERSION`` prints the Markdown.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CARD_FOLDER = "model_card"
CARD_MARKDOWN = f"{CARD_FOLDER}/model_card.md"
CARD_HTML = f"{CARD_FOLDER}/model_card.html"
Z95 = 1.959963984540054
TOP_FEATURES = 10


@dataclass(frozen=True)
class Section:
    """A heading with its paragraphs, bullet points and an optional table (header row first)."""

    title: str
    paragraphs: Sequence[str] = ()
    bullets: Sequence[str] = ()
    table: Sequence[Sequence[str]] = ()
    image: str | None = None  # a key of the images passed to the renderers


@dataclass(frozen=True)
class CardFacts:
    """What the card is made from (all measured or recorded elsewhere)."""

    record: Mapping[str, Any]  # the candidate's record (models/candidate.py)
    lineage: Mapping[str, str]  # the training set's window, label cutoff, rows and fingerprint
    spec: Mapping[str, Any]  # the feature spec: features, protected declaration
    auc_interval: tuple[float, float]
    decision: Mapping[str, Any] | None = None  # the champion decision that judged it, once there is one
    urls: Mapping[str, str] = field(default_factory=dict)  # mlflow_run, dagster_run


def _pct(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%"


def _points(rate: float) -> str:
    return f"{100 * rate:.1f} points"


def _count(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "n/a"


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if number != number else f"{number:.{digits}f}"


def card_sections(facts: CardFacts) -> list[Section]:
    """The card's sections, in reading order."""
    return [
        _intended_use(facts),
        _data(facts),
        _features(facts),
        _performance(facts),
        _calibration(facts),
        _importance(facts),
        _groups(facts),
        _reference(facts),
        _limits(facts),
        _comparison(facts),
    ]


def _intended_use(facts: CardFacts) -> Section:
    policy = facts.record["policy"]
    costs = policy.get("costs", {})
    return Section(
        "Intended use and decision policy",
        paragraphs=(
            "Estimates the probability that a life or health insurance application leads to a claim, for the "
            "nightly batch of new applications. The probability decides each application by the platform's one "
            f"decision policy: **accept** below {policy['refer_at']:.3f}, **refer** to an underwriter from "
            f"{policy['refer_at']:.3f}, **decline** from {policy['decline_at']:.3f}. Referrals and declines carry "
            "their three strongest reasons (TreeSHAP through the calibrator). The accepted applicants' "
            "probabilities size the claims reserve.",
            "The thresholds are those of least expected cost for: "
            + ", ".join(f"{k.replace('_', ' ')} {v:,.2f}" for k, v in costs.items())
            + ". Risk assessment in life and health insurance is a high-risk use under the EU AI Act: a person "
            "reviews every referral, and a decline can be explained from its stored reasons.",
            "Not for: pricing an individual premium, applicants outside the population of the training window, "
            "or any decision by a characteristic the insurer may not use (see Features below).",
        ),
    )


def _data(facts: CardFacts) -> Section:
    record, lineage = facts.record, facts.lineage
    bullets = [
        f"Registered model `{record['model_name']}` version **{record['version']}**, trained for "
        f"{record['training_month']}.",
        f"Training window: {lineage.get('training_set_window_first_day', 'n/a')} to "
        f"{lineage.get('training_set_window_last_day', 'n/a')}; label cutoff "
        f"{lineage.get('training_set_label_cutoff', 'n/a')} (only outcomes known by then were used).",
        f"Training rows: {_count(lineage.get('training_set_training_rows'))}; fingerprint "
        f"`{lineage.get('training_set_fingerprint', 'n/a')}`.",
        f"Out-of-time holdout: {record['holdout_month']} ({record['holdout_rows']:,} applications), never used to "
        "fit or tune the judged model.",
    ]
    bullets += [f"{name}: {url}" for name, url in facts.urls.items()]
    return Section("Data", bullets=bullets)


def _features(facts: CardFacts) -> Section:
    spec = facts.spec
    protected = dict(spec.get("protected") or {})
    excluded = [c for c, purpose in protected.items() if purpose == "excluded"]
    monitored = [c for c, purpose in protected.items() if purpose == "monitored"]
    return Section(
        "Features",
        paragraphs=(
            f"{len(spec['features'])} features: " + ", ".join(f"`{f}`" for f in spec["features"]) + ".",
            "Excluded (never a feature, nor in the served signature or the reasons; outcomes are still reported "
            "by them): " + (", ".join(f"`{c}`" for c in excluded) or "none") + ". Monitored (a feature, and "
            "reported by group): " + (", ".join(f"`{c}`" for c in monitored) or "none") + ".",
        ),
    )


def _performance(facts: CardFacts) -> Section:
    m = facts.record["holdout_metrics"]
    auc_low, auc_high = facts.auc_interval
    actual, expected, sd = m["accepted_actual_claims"], m["accepted_expected_claims"], m["accepted_claims_sd"]
    ratio_low, ratio_high = (actual - Z95 * sd) / expected, (actual + Z95 * sd) / expected
    gate = facts.record["gate"]
    rows = [
        ["metric", "holdout", "95% interval"],
        ["kappa at the policy's screen", _num(m["kappa"]), f"{_num(m['kappa_low'])}–{_num(m['kappa_high'])}"],
        ["AUC", _num(m["roc_auc"]), f"{_num(auc_low)}–{_num(auc_high)}"],
        ["Brier score", _num(m["brier"], 4), ""],
        ["log loss", _num(m["log_loss"], 4), ""],
        ["calibration error (10 equal-mass bins)", _num(m["ece"], 4), ""],
        ["claim rate / mean probability", f"{_pct(m['claim_rate'])} / {_pct(m['mean_probability'])}", ""],
        ["accepted: actual / expected claims", f"{actual:,.0f} / {expected:,.1f} = {actual / expected:.3f}",
         f"{ratio_low:.3f}–{ratio_high:.3f}"],
    ]  # fmt: skip
    verdict = "passed" if gate.get("passed") else "failed: " + "; ".join(gate.get("failures", []))
    return Section(
        "Holdout performance",
        paragraphs=(f"The quality gate {verdict}.",),
        table=rows,
    )


def _calibration(facts: CardFacts) -> Section:
    record = facts.record
    return Section(
        "Calibration",
        paragraphs=(
            f"Method `{record['calibration']}`, chosen by out-of-fold log loss; deployed refitted on validation and "
            f"holdout. Its level is known to ±{_num(record.get('calibration_level_sd'), 4)} (one standard deviation "
            "of the mean probability), a term of the reserve forecast's interval. The curve: predicted probability "
            "against the claim rate observed in each equal-mass bin of the holdout.",
        ),
        image="calibration",
    )


def _importance(facts: CardFacts) -> Section:
    importance = facts.record.get("importance") or {}
    shares = importance.get("shares") or {}
    top = sorted(shares, key=lambda f: -shares[f])[:TOP_FEATURES]
    rows = [["rank", "feature", "share"], *[[str(i + 1), f, _pct(shares[f])] for i, f in enumerate(top)]]
    return Section(
        "Top features",
        paragraphs=(
            f"Share of the model's importance: {importance.get('method', 'n/a')}, {importance.get('rows', 0):,} rows.",
        ),
        table=rows if top else (),
    )


def _groups(facts: CardFacts) -> Section:
    fairness = facts.record.get("fairness") or {}
    groups = fairness.get("groups") or []
    rows = [["column", "group", "applications", "declined", "claim rate", "mean probability", "AUC", "flag"]]
    for g in groups:
        rows.append(
            [
                g["column"], g["group"], f"{g['applications']:,}",
                f"{_pct(g['decline_rate'])} ({_pct(g['decline_low'])}–{_pct(g['decline_high'])})",
                f"{_pct(g['claim_rate'])} ({_pct(g['claim_low'])}–{_pct(g['claim_high'])})",
                f"{_pct(g['mean_probability'])} ({_pct(g['expected_low'])}–{_pct(g['expected_high'])})",
                _num(g.get("auc")), g.get("flag") or "",
            ]
        )  # fmt: skip
    tolerance = fairness.get("tolerance", {})
    flags = fairness.get("flags") or []
    return Section(
        "Outcomes by protected group (holdout)",
        paragraphs=(
            "Each group against the rest of its column: a flag when its realised-minus-expected claim rate departs "
            f"by more than {_points(tolerance.get('calibration', 0))} or its decline rate by more than "
            f"{_points(tolerance.get('decline_rate', 0))}, beyond the 95% interval (Bonferroni over the table). "
            + (f"Flagged: {'; '.join(flags)}." if flags else "No group is flagged."),
        ),
        table=rows if groups else (),
    )


def _reference(facts: CardFacts) -> Section:
    record = facts.record
    return Section(
        "Drift reference",
        paragraphs=(
            f"{record.get('reference_rows', 0):,} rows of the holdout {record['holdout_month']} with the model's own "
            "probabilities, shipped with the version: the most balanced of 32 seeded samples (its worst column "
            "closest to the whole month). Daily drift is judged against it, each drifted column weighed by its "
            "share of the importance above.",
        ),
    )


def _limits(facts: CardFacts) -> Section:
    record, fairness = facts.record, facts.record.get("fairness") or {}
    groups = fairness.get("groups") or []
    small = [f"{g['column']} {g['group']}" for g in groups if g.get("auc") is None]
    excluded = [c for c, purpose in dict(facts.spec.get("protected") or {}).items() if purpose == "excluded"]
    bullets = [
        f"Judged on one month ({record['holdout_month']}, {record['holdout_rows']:,} applications); later months "
        "are measured by `model_performance` once their outcomes are known.",
        f"Knows nothing after its label cutoff ({facts.lineage.get('training_set_label_cutoff', 'n/a')}): a change "
        "in who applies or who claims since then is for the drift monitor to find.",
    ]
    if small:
        bullets.append(
            f"Too few applications or outcomes for kappa and AUC in {len(small)} group(s): {', '.join(small[:8])}"
            + ("…" if len(small) > 8 else "")
            + "."
        )
    for column in excluded:
        gaps = [
            f"{column} {g['group']} {100 * g['calibration_vs_rest']:+.1f} points"
            for g in groups
            if g["column"] == column and g.get("calibration_vs_rest") is not None
        ]
        if gaps:
            bullets.append(
                f"`{column}` is excluded, so its groups' calibration is only as good as the other features allow: "
                f"realised-minus-expected claims against the rest, {', '.join(gaps)}."
            )
    bullets.extend(f"Flagged on the holdout: {flag}." for flag in fairness.get("flags") or [])
    return Section("Known limits", bullets=bullets)


def _comparison(facts: CardFacts) -> Section:
    decision = facts.decision
    if decision is None:
        return Section(
            "Comparison with the champion",
            paragraphs=("Not judged yet: the champion decision of its month writes this section.",),
        )
    comparison, incumbent = decision.get("comparison"), decision.get("incumbent")
    paragraphs = [
        f"Decision for {decision['training_month']}: **{decision['outcome']}**; {decision['reason']}."
    ]
    if comparison and incumbent:
        paragraphs.append(
            f"Judged against version {incumbent['version']} on the same holdout ({decision['holdout']['rows']:,} rows), "
            f"by {comparison.get('metric', 'kappa')}: candidate {_num(comparison['candidate'])}, incumbent "
            f"{_num(comparison['incumbent'])}, difference {_num(comparison['difference'])} "
            f"({comparison['confidence']:.0%} interval {_num(comparison['low'])} to {_num(comparison['high'])})."
        )
    elif incumbent is None:
        paragraphs.append("There was no champion to compare with.")
    moves = ((decision.get("importance") or {}).get("top") or []) if incumbent else []
    rows = [["rank", "feature", "share", "incumbent's rank", "moved"]]
    for move in moves:
        moved = "new" if move["moved"] is None else (f"{move['moved']:+d}" if move["moved"] else "=")
        rows.append([str(move["rank"]), move["feature"], _pct(move["share"]),
                     "—" if move["incumbent_rank"] is None else str(move["incumbent_rank"]), moved])  # fmt: skip
    return Section("Comparison with the champion", paragraphs=tuple(paragraphs), table=rows if moves else ())


def card_markdown(sections: Sequence[Section], title: str) -> str:
    """The card as Markdown (images referenced as the run's plot artifacts)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        lines += [f"- {bullet}" for bullet in section.bullets] + ([""] if section.bullets else [])
        if section.table:
            header, *body = section.table
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
            lines.append("")
        if section.image:
            lines += [f"![{section.image}](../plots/{section.image}.png)", ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
    "font-size:.85rem;text-align:left}th{background:#f2f2f2}h2{margin-top:2rem;border-bottom:1px solid #ddd}"
    "a{overflow-wrap:anywhere}"
)


def card_html(sections: Sequence[Section], title: str, images: Mapping[str, bytes]) -> str:
    """The card as one self-contained HTML page (PNG images inlined; no script, no network)."""

    def inline(text: str) -> str:
        escaped = re.sub(r"(https?://[^\s<]+)", r'<a href="\1">\1</a>', html.escape(text))
        for mark, tag in (("**", "strong"), ("`", "code")):
            parts = escaped.split(mark)
            escaped = "".join(
                part if i % 2 == 0 else f"<{tag}>{part}</{tag}>" for i, part in enumerate(parts)
            ) if len(parts) % 2 == 1 else escaped  # fmt: skip
        return escaped

    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{inline(p)}</p>" for p in section.paragraphs]
        if section.bullets:
            body.append("<ul>" + "".join(f"<li>{inline(b)}</li>" for b in section.bullets) + "</ul>")
        if section.table:
            header, *rows = section.table
            body.append(
                "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows)
                + "</table>"
            )  # fmt: skip
        if section.image and section.image in images:
            data = base64.b64encode(images[section.image]).decode()
            body.append(f'<img alt="{section.image}" src="data:image/png;base64,{data}">')
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def card_title(record: Mapping[str, Any]) -> str:
    return f"Model card: {record['model_name']} version {record['version']}"
