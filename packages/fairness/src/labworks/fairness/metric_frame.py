"""``MetricFrame``: fairlearn's disaggregation interface on top of the vectorised group cells.

Metric functions from this package (``selection_rate``, ``true_positive_rate``, …) are computed from one
pass of segment sums; any other callable ``f(y_true, y_pred, **sample_params)`` is applied group by group
(fairlearn's behaviour). Groups are the full cartesian product of the sensitive features; empty
combinations are NaN. ``n_boot`` gives bootstrap intervals (``*_ci`` methods) like fairlearn 0.15:
vectorised (:func:`labworks.fairness.bootstrap`) when every metric is one of this package's rate functions with
shared sample params, a row-resampling loop otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from labworks.fairness import compat
from labworks.fairness._inputs import as_1d, check_lengths, to_numpy
from labworks.fairness.comparators import check_method
from labworks.fairness.confusion import rate_from_cells
from labworks.fairness.groups import GroupIndex, encode_groups
from labworks.fairness.metrics import group_metrics

__all__ = ["MetricFrame"]

_FAST: dict[Callable[..., Any], str] = {
    compat.selection_rate: "selection_rate",
    compat.true_positive_rate: "true_positive_rate",
    compat.true_negative_rate: "true_negative_rate",
    compat.false_positive_rate: "false_positive_rate",
    compat.false_negative_rate: "false_negative_rate",
}


def _fold(x: pd.Series | pd.DataFrame) -> Any:
    return x.where(~(x > 1), 1 / x)


class MetricFrame:
    """Disaggregate metrics by (intersectional) sensitive groups.

    Args:
        metrics: a callable or a dict name → callable, each ``f(y_true, y_pred, **params)``.
        y_true, y_pred: (n,) arrays.
        sensitive_features: one or several columns (cartesian groups).
        control_features: one or several columns; results are then given per control level (as fairlearn).
        sample_params: params per metric (``{"sample_weight": w}`` or ``{name: {...}}`` for a dict of metrics);
            arrays of length n are split by group.
        n_boot, ci_quantiles, random_state: bootstrap intervals (as fairlearn 0.15).
        min_count: rate-denominator rows below which a fast-path rate is NaN (not estimable).
    """

    def __init__(
        self,
        *,
        metrics: Callable[..., Any] | dict[str, Callable[..., Any]],
        y_true: Any,
        y_pred: Any,
        sensitive_features: Any,
        control_features: Any = None,
        sample_params: dict[str, Any] | None = None,
        n_boot: int | None = None,
        ci_quantiles: list[float] | None = None,
        random_state: int | None = None,
        min_count: int = 1,
    ) -> None:
        self._single = callable(metrics) and not isinstance(metrics, dict)
        funcs: dict[str, Callable[..., Any]] = (
            {getattr(metrics, "__name__", "metric"): metrics} if self._single else dict(metrics)  # type: ignore[arg-type,dict-item]
        )
        if not funcs:
            raise ValueError("metrics must be a callable or a non-empty dict of callables")
        self._funcs = funcs
        self._yt = to_numpy(as_1d(y_true, "y_true"))
        self._yp = to_numpy(as_1d(y_pred, "y_pred"))
        self._n = check_lengths(y_true=self._yt, y_pred=self._yp)
        self._sf = sensitive_features
        self._sgroups = encode_groups(sensitive_features, n=self._n)
        self._cgroups: GroupIndex | None = None
        self._groups = self._sgroups
        if control_features is not None:
            cg = encode_groups(control_features, n=self._n)
            names = tuple(nm.replace("sensitive_feature_", "control_feature_", 1) for nm in cg.names)
            self._cgroups = GroupIndex(cg.codes, cg.levels, names)
            if set(names) & set(self._sgroups.names):
                raise ValueError(
                    f"control and sensitive feature names overlap: {sorted(set(names) & set(self._sgroups.names))}"
                )
            self._groups = GroupIndex(
                np.asarray(cg.codes) * self._sgroups.n_groups + np.asarray(self._sgroups.codes),
                cg.levels + self._sgroups.levels,
                names + self._sgroups.names,
            )
        self._params = self._split_params(sample_params)
        self._min_count = min_count
        self._by_group, self._overall = self._compute(np.arange(self._n), first=True)
        self._ci_quantiles = ci_quantiles
        self._boot: list[tuple[pd.DataFrame, pd.Series]] | None = None
        if n_boot is not None:
            if n_boot < 1 or not ci_quantiles:
                raise ValueError("n_boot must be ≥ 1 and ci_quantiles a non-empty list of quantiles")
            self._boot = self._bootstrap(int(n_boot), random_state)

    # ------------------------------------------------------------------ computation
    def _split_params(self, sample_params: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        if not sample_params:
            return {k: {} for k in self._funcs}
        if self._single or not all(isinstance(v, dict) for v in sample_params.values()):
            return {k: dict(sample_params) for k in self._funcs}
        unknown = set(sample_params) - set(self._funcs)
        if unknown:
            raise ValueError(
                f"sample_params has keys {sorted(unknown)} that are not metric names {sorted(self._funcs)}"
            )
        return {k: dict(sample_params.get(k, {})) for k in self._funcs}

    def _compute(self, rows: np.ndarray, first: bool = False) -> tuple[pd.DataFrame, pd.Series]:
        codes = self._groups.codes[rows]
        yt, yp = self._yt[rows], self._yp[rows]
        index = self._groups.pandas_index()
        cols: dict[str, np.ndarray] = {}
        overall: dict[str, Any] = {}
        for name, f in self._funcs.items():
            params = {
                k: (to_numpy(as_1d(v, k))[rows] if _is_rowwise(v, self._n) else v)
                for k, v in self._params[name].items()
            }
            fast = _FAST.get(f)
            if fast is not None and set(params) <= {"sample_weight", "pos_label"}:
                sw = params.get("sample_weight")
                pos = params.get("pos_label", 1)
                gm = group_metrics(
                    yt,
                    yp,
                    sensitive_features=GroupIndex(codes, self._groups.levels, self._groups.names),
                    sample_weight=sw,
                    pos_label=pos,
                    min_count=self._min_count,
                )
                cols[name] = gm.by_group(fast)
                if self._cgroups is None:
                    overall[name] = gm.overall(fast)
                else:
                    cgm = group_metrics(yt, yp, sensitive_features=self._control_index(rows), sample_weight=sw, pos_label=pos, min_count=self._min_count)  # fmt: skip
                    overall[name] = cgm.by_group(fast)
            else:
                vals = np.full(self._groups.n_groups, np.nan, dtype=object)
                for g in np.unique(codes):
                    m = codes == g
                    sub = {
                        k: (v[m] if isinstance(v, np.ndarray) and len(v) == len(rows) else v)
                        for k, v in params.items()
                    }
                    vals[g] = f(yt[m], yp[m], **sub)
                cols[name] = _maybe_float(vals)
                if self._cgroups is None:
                    overall[name] = f(yt, yp, **params)
                else:
                    cc = np.asarray(self._cgroups.codes)[rows]
                    ov = np.full(self._cgroups.n_groups, np.nan, dtype=object)
                    for c in np.unique(cc):
                        m = cc == c
                        sub = {
                            k: (v[m] if isinstance(v, np.ndarray) and len(v) == len(rows) else v)
                            for k, v in params.items()
                        }
                        ov[c] = f(yt[m], yp[m], **sub)
                    overall[name] = _maybe_float(ov)
        if self._cgroups is None:
            return pd.DataFrame(cols, index=index), pd.Series(overall)
        return pd.DataFrame(cols, index=index), pd.DataFrame(overall, index=self._cgroups.pandas_index())

    def _control_index(self, rows: np.ndarray) -> GroupIndex:
        assert self._cgroups is not None
        return GroupIndex(np.asarray(self._cgroups.codes)[rows], self._cgroups.levels, self._cgroups.names)

    def _by_control(self, x: pd.DataFrame, how: str) -> Any:
        """Aggregate over the sensitive levels: per control level when control features are given."""
        if self._cgroups is None:
            return getattr(x, how)()
        return getattr(x.groupby(level=list(self._cgroups.names)), how)()

    def _overall_aligned(self, bg: pd.DataFrame, ov: Any) -> Any:
        if self._cgroups is None:
            return ov.astype(float)
        keys = bg.index.droplevel(list(self._sgroups.names))
        return pd.DataFrame(ov.astype(float).reindex(keys).to_numpy(), index=bg.index, columns=bg.columns)

    def _bootstrap(self, n_boot: int, random_state: int | None) -> list[tuple[pd.DataFrame, pd.Series]]:
        fast = self._fast_bootstrap(n_boot, random_state) if self._cgroups is None else None
        if fast is not None:
            return fast
        rng = np.random.default_rng(random_state)
        out = []
        for _ in range(n_boot):
            rows = rng.integers(0, self._n, size=self._n)
            out.append(self._compute(rows))
        return out

    def _fast_bootstrap(
        self, n_boot: int, random_state: int | None
    ) -> list[tuple[pd.DataFrame, pd.Series]] | None:
        """Vectorised replicates when every metric is one of this package's rates with shared params."""
        from labworks.fairness.bootstrap import bootstrap

        names = {k: _FAST.get(f) for k, f in self._funcs.items()}
        params = [self._params[k] for k in self._funcs]
        if any(v is None for v in names.values()) or any(
            set(p) - {"sample_weight", "pos_label"} for p in params
        ):
            return None
        first = params[0]
        if any(p.keys() != first.keys() or any(p[k] is not first[k] for k in p) for p in params):
            return None
        gm = group_metrics(self._yt, self._yp, sensitive_features=self._groups, sample_weight=first.get("sample_weight"),
                           pos_label=first.get("pos_label", 1), min_count=self._min_count)  # fmt: skip
        seed = int(np.random.default_rng(random_state).integers(0, 2**31 - 1))
        res = bootstrap(gm, n_boot=n_boot, seed=seed)
        index = self._groups.pandas_index()
        by = {k: res.samples(m) for k, m in names.items()}  # type: ignore[arg-type]
        ov = {k: rate_from_cells(res.cells.sum(1), m) for k, m in names.items()}  # type: ignore[arg-type]
        return [
            (
                pd.DataFrame({k: v[b] for k, v in by.items()}, index=index),
                pd.Series({k: v[b] for k, v in ov.items()}),
            )
            for b in range(n_boot)
        ]

    # ------------------------------------------------------------------ fairlearn surface
    def _shape(self, x: Any) -> Any:
        if self._single:
            if isinstance(x, pd.DataFrame):
                return x.iloc[:, 0]
            if isinstance(x, pd.Series):
                return x.iloc[0]
        return x

    @property
    def by_group(self) -> pd.Series | pd.DataFrame:
        return self._shape(self._by_group.copy())

    @property
    def overall(self) -> Any:
        return self._shape(self._overall.copy())

    @property
    def sensitive_levels(self) -> list[str]:
        return list(self._sgroups.names)

    @property
    def control_levels(self) -> list[str] | None:
        return None if self._cgroups is None else list(self._cgroups.names)

    @property
    def counts(self) -> pd.Series:
        """Rows per group (0 for empty intersectional cells)."""
        codes = self._groups.codes
        return pd.Series(
            np.bincount(codes, minlength=self._groups.n_groups), index=self._groups.pandas_index(), name="n"
        )

    def group_min(self, errors: str = "raise") -> Any:
        return self._shape(
            self._by_control(self._by_group.apply(lambda c: pd.to_numeric(c, errors="coerce")), "min")
        )

    def group_max(self, errors: str = "raise") -> Any:
        return self._shape(
            self._by_control(self._by_group.apply(lambda c: pd.to_numeric(c, errors="coerce")), "max")
        )

    def _diff(self, bg: pd.DataFrame, ov: pd.Series, method: str, reference: Any) -> pd.Series:
        bg = bg.apply(lambda c: pd.to_numeric(c, errors="coerce"))
        if method == "between_groups":
            return self._by_control(bg, "max") - self._by_control(bg, "min")
        if method == "to_overall":
            return self._by_control((bg - self._overall_aligned(bg, ov)).abs(), "max")
        raise ValueError("use difference(method='vs_reference', reference=...)")

    def _ratio(self, bg: pd.DataFrame, ov: pd.Series, method: str, reference: Any) -> pd.Series:
        bg = bg.apply(lambda c: pd.to_numeric(c, errors="coerce"))
        if method == "between_groups":
            return self._by_control(bg, "min") / self._by_control(bg, "max")
        if method == "to_overall":
            return self._by_control(_fold(bg / self._overall_aligned(bg, ov)), "min")
        raise ValueError("use ratio(method='vs_reference', reference=...)")

    def difference(
        self, method: str = "between_groups", errors: str = "coerce", reference: Any = None
    ) -> Any:
        """max − min (between_groups), max |g − overall| (to_overall), or signed rest − reference."""
        check_method(method)
        if method == "vs_reference":
            return self._shape(self._vs_reference("difference", reference))
        return self._shape(self._diff(self._by_group, self._overall, method, reference))

    def ratio(self, method: str = "between_groups", errors: str = "coerce", reference: Any = None) -> Any:
        """min / max (between_groups), min folded g / overall (to_overall), or rest / reference."""
        check_method(method)
        if method == "vs_reference":
            return self._shape(self._vs_reference("ratio", reference))
        return self._shape(self._ratio(self._by_group, self._overall, method, reference))

    def _vs_reference(self, kind: str, reference: Any) -> pd.Series:
        if self._cgroups is not None:
            raise ValueError("method='vs_reference' is not available together with control_features")
        code = self._sgroups.code_of(reference)
        ref_rows = np.flatnonzero(self._sgroups.codes == code)
        rest_rows = np.flatnonzero(self._sgroups.codes != code)
        out = {}
        for name, f in self._funcs.items():
            vals = []
            for rows in (rest_rows, ref_rows):
                params = {
                    k: (to_numpy(as_1d(v, k))[rows] if _is_rowwise(v, self._n) else v)
                    for k, v in self._params[name].items()
                }
                vals.append(float(f(self._yt[rows], self._yp[rows], **params)))
            out[name] = vals[0] - vals[1] if kind == "difference" else vals[0] / vals[1]
        return pd.Series(out)

    # ------------------------------------------------------------------ bootstrap intervals
    def _ci(self, fn: Callable[[pd.DataFrame, pd.Series], Any]) -> list[Any]:
        if self._boot is None or self._ci_quantiles is None:
            raise ValueError("construct the MetricFrame with n_boot and ci_quantiles to get intervals")
        samples = [fn(bg, ov) for bg, ov in self._boot]
        if isinstance(samples[0], pd.DataFrame):
            stack = np.stack([s.to_numpy(dtype=float) for s in samples])
            qs = np.nanquantile(stack, self._ci_quantiles, axis=0)
            return [
                self._shape(pd.DataFrame(q, index=samples[0].index, columns=samples[0].columns)) for q in qs
            ]
        stack = np.stack([np.asarray(s, dtype=float) for s in samples])
        qs = np.nanquantile(stack, self._ci_quantiles, axis=0)
        return [self._shape(pd.Series(q, index=samples[0].index)) for q in qs]

    @property
    def by_group_ci(self) -> list[Any]:
        return self._ci(lambda bg, ov: bg.apply(lambda c: pd.to_numeric(c, errors="coerce")))

    @property
    def overall_ci(self) -> list[Any]:
        return self._ci(lambda bg, ov: ov.astype(float))

    def difference_ci(self, method: str = "between_groups") -> list[Any]:
        return self._ci(lambda bg, ov: self._diff(bg, ov, method, None))

    def ratio_ci(self, method: str = "between_groups") -> list[Any]:
        return self._ci(lambda bg, ov: self._ratio(bg, ov, method, None))

    def group_min_ci(self) -> list[Any]:
        return self._ci(lambda bg, ov: bg.apply(lambda c: pd.to_numeric(c, errors="coerce")).min())

    def group_max_ci(self) -> list[Any]:
        return self._ci(lambda bg, ov: bg.apply(lambda c: pd.to_numeric(c, errors="coerce")).max())


def _is_rowwise(v: Any, n: int) -> bool:
    return hasattr(v, "__len__") and not isinstance(v, str | dict) and len(v) == n


def _maybe_float(vals: np.ndarray) -> np.ndarray:
    try:
        return vals.astype(np.float64)
    except (TypeError, ValueError):
        return vals
