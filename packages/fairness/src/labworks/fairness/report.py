"""The fairness report: per-group rates with intervals, disparities under every convention, score diagnostics,
the impossibility check, PNG plots and tidy CSVs, written as Markdown or HTML."""

from __future__ import annotations

import html
import os
import re
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from labworks.core import Config, atomic_write_text, progress
from labworks.fairness.bootstrap import bootstrap, bootstrap_statistic
from labworks.fairness.confusion import canonical_rate
from labworks.fairness.groups import GroupIndex
from labworks.fairness.impossibility import get_worldview, impossibility_check
from labworks.fairness.metrics import NotEstimableWarning, group_metrics
from labworks.fairness.plots import plot_curves_by_group, plot_group_rates

__all__ = ["ReportConfig", "run_report"]

REPORT_METRICS = (
    "selection_rate",
    "base_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "positive_predictive_value",
    "negative_predictive_value",
    "false_discovery_rate",
    "false_omission_rate",
    "accuracy",
)


class ReportConfig(Config):
    """Settings of ``labworks fairness report`` (also loadable from YAML/JSON)."""

    label: str
    pred: str | None = None
    score: str | None = None
    groups: tuple[str, ...] = Field(min_length=1)
    weight: str | None = None
    reference: str | None = None
    pos_label: str = "1"
    threshold: float = 0.5
    n_boot: int = Field(1000, ge=1)
    confidence: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    min_count: int = Field(10, ge=1)
    format: Literal["md", "html"] = "md"
    worldview: Literal["wysiwyg", "wae"] | None = None
    title: str = "Fairness report"


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "NaN" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def _md_table(df: pd.DataFrame, index: bool = True) -> str:
    d = df.reset_index() if index else df
    head = "| " + " | ".join(map(str, d.columns)) + " |"
    sep = "|" + "|".join("---" for _ in d.columns) + "|"
    body = [
        "| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |"
        for row in d.itertuples(index=False)
    ]
    return "\n".join([head, sep, *body])


def _pos_label(series: pd.Series, raw: str) -> Any:
    vals = set(pd.unique(series))
    for cand in (raw, _num(raw)):
        if cand in vals:
            return cand
    if raw == "1" and vals <= {0, 1}:
        return 1
    raise ValueError(
        f"--pos-label {raw!r} is not a value of the label column (values: {sorted(map(str, vals))[:6]})"
    )


def _num(raw: str) -> Any:
    try:
        f = float(raw)
        return int(f) if f.is_integer() else f
    except ValueError:
        return raw


def run_report(
    data: pd.DataFrame | str | os.PathLike[str], config: ReportConfig, out_dir: str | os.PathLike[str]
) -> Path:
    """Compute everything and write ``report.md``/``report.html`` plus PNGs and CSVs into ``out_dir``.

    Not-estimable groups are listed in the report itself, so their warnings are not repeated on stderr.

    Returns:
        Path of the report file.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        return _run_report(data, config, out_dir)


def _run_report(
    data: pd.DataFrame | str | os.PathLike[str], config: ReportConfig, out_dir: str | os.PathLike[str]
) -> Path:
    df = pd.read_csv(data) if not isinstance(data, pd.DataFrame) else data
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cols = [config.label, *config.groups] + [c for c in (config.pred, config.score, config.weight) if c]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the data: {missing}; available: {list(df.columns)[:30]}")
    if config.pred is None and config.score is None:
        raise ValueError("give a prediction column (--pred) or a score column (--score) to threshold")
    n_raw = len(df)
    df = df.dropna(subset=cols)
    dropped = n_raw - len(df)
    pos = _pos_label(df[config.label], config.pos_label)
    y = (df[config.label] == pos).astype(int).to_numpy()
    if config.pred is not None:
        y_pred = (df[config.pred] == _pos_label(df[config.pred], config.pos_label)).astype(int).to_numpy()
    else:
        y_pred = (df[config.score].to_numpy(dtype=float) >= config.threshold).astype(int)
    sf = df[list(config.groups)]
    w = df[config.weight].to_numpy(dtype=float) if config.weight else None
    steps = ["metrics", "bootstrap", "plots", "scores", "impossibility", "write"]
    bar = progress(total=len(steps), desc="fairness report", unit="step")
    files: dict[str, Path] = {}

    gm = group_metrics(y, y_pred, sensitive_features=sf, sample_weight=w, min_count=config.min_count)
    ref = config.reference
    if ref is not None:
        gm.groups.code_of(ref)  # fail early, naming the groups
    metrics: tuple[str, ...] = REPORT_METRICS
    if config.worldview:
        wv = get_worldview(config.worldview)
        metrics = tuple(dict.fromkeys((*wv.metrics, *REPORT_METRICS)))
    wilson = gm.table(metrics, ci="wilson", confidence=config.confidence)
    bar.update(1)

    boot = bootstrap(gm, n_boot=config.n_boot, seed=config.seed)
    tidy = boot.add_to_table(gm.table(metrics), config.confidence)
    tidy = tidy.rename(columns={"lower": "boot_lower", "upper": "boot_upper", "ci_method": "boot_method"})
    tidy["wilson_lower"], tidy["wilson_upper"] = wilson["lower"].to_numpy(), wilson["upper"].to_numpy()
    disp = boot.disparity_table(
        (
            "selection_rate",
            "true_positive_rate",
            "false_positive_rate",
            "positive_predictive_value",
            "error_rate",
        ),
        reference=ref,
        confidence=config.confidence,
    )
    counts = gm.counts_table()
    counts.index = pd.Index([gm.groups.label_str(i) for i in range(gm.n_groups)], name="group")
    files["group_metrics.csv"] = atomic_write_text(out / "group_metrics.csv", tidy.to_csv(index=False))
    files["disparities.csv"] = atomic_write_text(out / "disparities.csv", disp.to_csv(index=False))
    files["counts.csv"] = atomic_write_text(out / "counts.csv", counts.to_csv(index_label="group"))
    bar.update(1)

    plot_metrics = (
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
        "positive_predictive_value",
    )
    files["rates.png"] = plot_group_rates(
        wilson,
        out / "rates.png",
        plot_metrics,
        title=f"{config.title}: per-group rates ({int(config.confidence * 100)}% Wilson)",
    )
    bar.update(1)

    score_md: list[str] = []
    if config.score is not None:
        from labworks.fairness.scores import (
            auc_by_group,
            calibration_by_group,
            roc_curve_by_group,
            threshold_sweep,
        )

        s = df[config.score].to_numpy(dtype=float)
        auc = auc_by_group(y, s, sensitive_features=sf, sample_weight=w)
        roc = roc_curve_by_group(y, s, sensitive_features=sf, sample_weight=w)
        files["roc.png"] = plot_curves_by_group(
            {k: (v[0], v[1]) for k, v in roc.items()},
            out / "roc.png",
            "false positive rate",
            "true positive rate",
            "ROC by group",
            diagonal=True,
        )
        lo, hi = float(np.min(s)), float(np.max(s))
        sweep = threshold_sweep(
            y,
            s,
            sensitive_features=sf,
            thresholds=np.unique(np.linspace(lo, hi, 51)),
            sample_weight=w,
            min_count=config.min_count,
        )
        files["sweep.csv"] = atomic_write_text(out / "sweep.csv", sweep.table().to_csv(index=False))
        curves = {
            "demographic parity diff": (sweep.thresholds, sweep.disparity("selection_rate")),
            "TPR diff": (sweep.thresholds, sweep.disparity("true_positive_rate")),
            "FPR diff": (sweep.thresholds, sweep.disparity("false_positive_rate")),
        }
        files["sweep.png"] = plot_curves_by_group(
            curves,
            out / "sweep.png",
            "threshold (score ≥ t)",
            "max − min across groups",
            "Disparities across thresholds",
        )
        codes = np.asarray(gm.groups.codes)
        names = list(auc.index)

        def _auc(rows: np.ndarray) -> np.ndarray:
            a = auc_by_group(y[rows], s[rows], sensitive_features=GroupIndex(codes[rows], gm.groups.levels, gm.groups.names),
                             sample_weight=None if w is None else w[rows])  # fmt: skip
            return a.reindex(names).to_numpy()

        n_auc = min(config.n_boot, 200)
        _, a_lo, a_hi = bootstrap_statistic(
            _auc, len(y), n_boot=n_auc, seed=config.seed, confidence=config.confidence
        )
        auc_tab = pd.DataFrame(
            {"auc": auc.to_numpy(), "lower": a_lo, "upper": a_hi}, index=pd.Index(names, name="group")
        )
        files["auc.csv"] = atomic_write_text(out / "auc.csv", auc_tab.to_csv())
        score_md += [
            "## Scores",
            "",
            f"ROC AUC per group (bootstrap {int(config.confidence * 100)}% interval, B = {n_auc}):",
            "",
            _md_table(auc_tab),
            "",
        ]
        if lo >= 0 and hi <= 1:
            _, ece = calibration_by_group(y, s, sensitive_features=sf, sample_weight=w)
            score_md += [
                "Expected calibration error (10 uniform bins) per group:",
                "",
                _md_table(ece.to_frame()),
                "",
            ]
        score_md += ["![ROC by group](roc.png)", "", "![Disparities across thresholds](sweep.png)", ""]
    bar.update(1)

    imp = impossibility_check(
        y,
        y_pred,
        sensitive_features=sf,
        scores=df[config.score].to_numpy(dtype=float) if config.score and lo >= 0 and hi <= 1 else None,
        min_count=config.min_count,
    )
    bar.update(1)

    def disp_rows(method: str) -> pd.DataFrame:
        t = disp[disp["method"] == method][["measure", "kind", "value", "lower", "upper"]]
        return t.set_index(["measure", "kind"])

    overview_cols = [
        "group",
        "metric",
        "value",
        "wilson_lower",
        "wilson_upper",
        "n",
        "n_denominator",
        "estimable",
    ]
    key = tidy[tidy["metric"].isin([canonical_rate(m) for m in plot_metrics])][overview_cols]
    not_est = tidy[~tidy["estimable"]]
    md = [
        f"# {config.title}",
        "",
        f"Rows: {len(df)} ({dropped} dropped for missing values). Label `{config.label}` (positive = {pos!r}); "
        + (
            f"prediction `{config.pred}`"
            if config.pred
            else f"prediction = `{config.score}` ≥ {config.threshold}"
        )
        + f"; groups: {', '.join(f'`{g}`' for g in config.groups)}"
        + (" (intersectional)" if len(config.groups) > 1 else "")
        + (f"; weights `{config.weight}`" if config.weight else "")
        + ".",
        "",
        "Conventions: **between_groups** = max − min (difference) and min / max (ratio), as fairlearn; **to_overall** = "
        "largest gap to the overall value (ratios folded ≤ 1), as fairlearn; **vs_reference** = pooled rest − reference, "
        "signed (ratio rest / reference), as AIF360's privileged-group metrics. "
        f"A rate whose denominator has fewer than {config.min_count} rows is *not estimable*: it is reported as NaN and left out of comparisons.",
        "",
    ]
    if config.worldview:
        wv = get_worldview(config.worldview)
        md += [
            f"Worldview **{wv.name}**: {wv.description} Criteria emphasised: {', '.join(wv.criteria)}.",
            "",
        ]
    md += [
        "## Groups",
        "",
        _md_table(counts),
        "",
        "## Per-group rates",
        "",
        f"{int(config.confidence * 100)}% Wilson intervals"
        + (" (Kish effective n)" if w is not None else "")
        + f"; bootstrap intervals (B = {config.n_boot}) are in `group_metrics.csv`.",
        "",
        "![Per-group rates](rates.png)",
        "",
        _md_table(key, index=False),
        "",
    ]
    if len(not_est):
        md += [
            f"Not estimable: {len(not_est)} (group, metric) cells — e.g. "
            + ", ".join(f"{r.group}/{r.metric}" for r in not_est.head(8).itertuples())
            + ".",
            "",
        ]
    md += [
        "## Disparities",
        "",
        f"Bootstrap {int(config.confidence * 100)}% percentile intervals, B = {config.n_boot}, seed {config.seed}.",
        "",
    ]
    for method in ["between_groups", "to_overall"] + (["vs_reference"] if ref is not None else []):
        title = method + (f" (reference = {ref})" if method == "vs_reference" else "")
        md += [f"### {title}", "", _md_table(disp_rows(method)), ""]
    md += ["### The same gaps under each library's convention", ""]
    for m in ("selection_rate", "true_positive_rate"):
        ct = gm.convention_table(m, ref)
        md += [f"{m}:", "", _md_table(ct, index=False), ""]
    md += score_md
    md += ["## Impossibility check", "", imp.summary(config.worldview), "", _md_table(imp.table), ""]
    md += ["## Files", "", *[f"- `{k}`" for k in files], ""]
    text = "\n".join(md)
    if config.format == "html":
        path = atomic_write_text(out / "report.html", _to_html(text, config.title))
    else:
        path = atomic_write_text(out / "report.md", text)
    bar.update(1)
    bar.close()
    return path


def _to_html(md: str, title: str) -> str:
    """Minimal Markdown → HTML for the constructs this report emits (headings, tables, images, lists)."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}</style></head><body>"]  # fmt: skip
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = re.split(r"(?<!\\)\|", lines[i].strip()[1:-1])
                rows.append([c.strip().replace("\\|", "|") for c in cells])
                i += 1
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[2:]]
            out.append("</table>")
            continue
        if ln.startswith("#"):
            level = len(ln) - len(ln.lstrip("#"))
            out.append(f"<h{level}>{html.escape(ln[level:].strip())}</h{level}>")
        elif ln.startswith("!["):
            alt, src = ln[2:].split("](", 1)
            out.append(f"<p><img src='{html.escape(src.rstrip(')'))}' alt='{html.escape(alt)}'></p>")
        elif ln.startswith("- "):
            out.append(f"<li>{html.escape(ln[2:])}</li>")
        elif ln.strip():
            out.append(f"<p>{html.escape(ln)}</p>")
        i += 1
    out.append("</body></html>")
    return "\n".join(out)
