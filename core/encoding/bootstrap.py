"""Bootstrap over test images: confidence intervals of ROI scores and paired differences.

What is resampled
-----------------
The test images (rows). One resample is a vector of multinomial counts ``c`` of shape
(n_test,) summing to ``n_test`` (how often each image was drawn). The **same** count matrix
``C`` of shape (n_boot, n_test) is used for every target and every instruction, so the
spatial correlation between targets is kept inside each resample and the difference between
two instructions is a **paired** difference (each resample scores both instructions on the
same images).

How it is computed
------------------
Pearson's r on a resample needs only five weighted sums per target,
``S_y = c @ y``, ``S_yy = c @ y**2``, ``S_p = c @ p``, ``S_pp = c @ p**2`` and
``S_yp = c @ (y * p)``, from which ``cov = S_yp - S_y S_p / n``,
``var_y = S_yy - S_y**2 / n``, ``var_p = S_pp - S_p**2 / n`` and
``r = cov / sqrt(var_y var_p)``. For all resamples at once these sums are **one matrix
product** of ``C`` with the per-image moments (n_test, 5 x targets); the moments of ``y``
are shared by all instructions. Targets are processed in blocks, so the working memory is
bounded (a few hundred MB at 20,000 targets x 1,000 images x 1,000 resamples), and ROI
means are accumulated per block by a second matrix product with the ROI weights.

Precision: every sum is float64 and ``y`` and ``p`` are centred on their full-sample means
first (r is shift-invariant), so ``S_yy - S_y**2 / n`` loses about ``log10(n)`` digits
instead of the ``2 log10(|mean| / sd)`` digits a raw-moment formula would lose. The result
equals a per-resample recomputation to ~1e-12 (tested to 1e-9).

Intervals and p-values
----------------------
* Percentile intervals (default) or BCa (bias-corrected and accelerated; the acceleration
  comes from the leave-one-image-out jackknife, whose sums are the all-image sums minus one
  image's moments: ``n_test`` more rows of element-wise work, no extra matrix product).
* Two-sided bootstrap p-value of a difference ``d`` (percentile-interval inversion):
  ``p = min(1, 2 min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (n_boot + 1))``: the smallest
  two-sided level at which the percentile interval excludes 0. Its floor is
  ``2 / (n_boot + 1)`` (0.002 with 1,000 resamples).
* What the interval covers: the uncertainty from the finite set of test images, for this
  subject and these fitted encoders (the encoders are not refitted). It is not an
  across-subject interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.encoding._array import Array, ArrayOps, get_ops
from core.encoding.scores import MIN_TEST_SAMPLES

#: Interval methods of :func:`score_intervals` and :func:`paired_differences`.
CI_METHODS: tuple[str, ...] = ("percentile", "bca")

#: Score kinds a :class:`BootstrapScores` holds.
SCORE_KINDS: tuple[str, ...] = ("r", "normalized")

#: Working-memory budget (bytes) used to size the target blocks when none is given.
DEFAULT_BLOCK_BYTES = 256 * 2**20

#: Relative threshold under which a resampled variance counts as zero (constant resample).
_ZERO_VARIANCE = 1e-12


# --------------------------------------------------------------------------- resamples


def resample_indices(n_test: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Row indices of bootstrap resamples of the test images (with replacement).

    Parameters
    ----------
    n_test : int
        Number of test images (>= 1).
    n_boot : int
        Number of resamples (>= 1).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same resamples.

    Returns
    -------
    indices : ndarray of shape (n_boot, n_test), int64
        Row ``b`` lists the images drawn in resample ``b``.
    """
    _check_n_boot(n_boot)
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test}")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_test, size=(n_boot, n_test), dtype=np.int64)


def counts_from_indices(indices: Any, n_test: int) -> np.ndarray:
    """Multinomial count matrix of resamples given as row indices.

    Parameters
    ----------
    indices : array-like of int, shape (n_boot, n_draws)
        Images drawn per resample, each in ``[0, n_test)``.
    n_test : int

    Returns
    -------
    counts : ndarray of shape (n_boot, n_test), float64
        ``counts[b, i]`` = how often image ``i`` was drawn in resample ``b``.
    """
    idx = np.asarray(indices)
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError("indices must be a 2-D integer array (n_boot, n_draws)")
    if idx.size and (idx.min() < 0 or idx.max() >= n_test):
        raise ValueError(f"indices must lie in [0, {n_test})")
    n_boot = idx.shape[0]
    flat = (idx + n_test * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_test).reshape(n_boot, n_test).astype(
        np.float64
    )


def resample_counts(n_test: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Count matrix ``C`` of the resamples :func:`resample_indices` draws with this seed.

    Returns
    -------
    counts : ndarray of shape (n_boot, n_test), float64
        Each row sums to ``n_test``.
    """
    return counts_from_indices(resample_indices(n_test, n_boot, seed), n_test)


# --------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class BootstrapScores:
    """Bootstrap distribution of ROI-mean scores for one or more instructions.

    Attributes
    ----------
    instructions : tuple of str, length n_instructions
    rois : tuple of str, length n_rois
    n_targets : ndarray of shape (n_rois,)
        Targets averaged in each ROI.
    n_test : int
        Test images.
    seed : int or None
        Seed of the resamples (None when counts were passed in).
    observed_r : ndarray of shape (n_instructions, n_rois)
        ROI mean of the per-target Pearson r on all test images.
    r : ndarray of shape (n_instructions, n_boot, n_rois)
        ROI mean of the per-target r in each resample (same resample index ``b`` = same images
        for every instruction and ROI).
    observed_normalized, normalized : ndarray or None
        Same for the normalised alignment ``r / sqrt(nc)`` (None without a noise ceiling).
    jackknife_r, jackknife_normalized : ndarray of shape (n_instructions, n_test, n_rois) or None
        Leave-one-image-out ROI means (only with ``jackknife=True``; needed for BCa).
    """

    instructions: tuple[str, ...]
    rois: tuple[str, ...]
    n_targets: np.ndarray
    n_test: int
    seed: int | None
    observed_r: np.ndarray
    r: np.ndarray
    observed_normalized: np.ndarray | None = None
    normalized: np.ndarray | None = None
    jackknife_r: np.ndarray | None = None
    jackknife_normalized: np.ndarray | None = None

    @property
    def n_boot(self) -> int:
        return int(self.r.shape[1])

    def arrays(self, kind: str = "normalized") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(observed, resampled, jackknife)`` arrays of one score kind.

        Parameters
        ----------
        kind : {"r", "normalized"}

        Returns
        -------
        observed : ndarray of shape (n_instructions, n_rois)
        resampled : ndarray of shape (n_instructions, n_boot, n_rois)
        jackknife : ndarray of shape (n_instructions, n_test, n_rois) or None
        """
        if kind == "r":
            return self.observed_r, self.r, self.jackknife_r
        if kind == "normalized":
            if self.normalized is None:
                raise ValueError("no noise ceiling was given: only kind='r' is available")
            return self.observed_normalized, self.normalized, self.jackknife_normalized
        raise ValueError(f"unknown score kind {kind!r}; expected one of {SCORE_KINDS}")


# --------------------------------------------------------------------------- input checks


def _check_n_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot!r}")


def _as_instructions(y_pred: Any, names: Sequence[str] | None) -> list[tuple[str, Any]]:
    """``[(name, array of shape (n_test, n_targets))]`` without copying the arrays."""
    if isinstance(y_pred, Mapping):
        items = [(str(k), v if hasattr(v, "shape") else np.asarray(v)) for k, v in y_pred.items()]
        if names is not None:
            raise ValueError("instruction names come from the mapping keys; drop `instructions`")
    else:
        if isinstance(y_pred, np.ndarray) and y_pred.ndim == 2:
            arrays = [y_pred]
        elif isinstance(y_pred, np.ndarray) and y_pred.ndim == 3:
            arrays = list(y_pred)
        elif isinstance(y_pred, Sequence) and not isinstance(y_pred, str):
            arrays = [a if hasattr(a, "shape") else np.asarray(a) for a in y_pred]
        else:
            arrays = [np.asarray(y_pred)]
        if names is None:
            names = [str(i) for i in range(len(arrays))]
        if len(names) != len(arrays):
            raise ValueError(f"{len(names)} instruction names for {len(arrays)} predictions")
        items = list(zip((str(n) for n in names), arrays, strict=True))
    if not items:
        raise ValueError("no predictions given")
    if len({name for name, _ in items}) != len(items):
        raise ValueError("instruction names must be unique")
    return items


def _check_responses(y_true: Any, min_samples: int) -> np.ndarray:
    """Responses as a 2-D float array (float32 kept: blocks are cast to float64 when used)."""
    y = np.asarray(y_true)
    if not np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"responses must be 2-D (n_test, n_targets), got shape {y.shape}")
    if y.shape[0] < min_samples:
        raise ValueError(f"too few test samples: {y.shape[0]} < min_samples={min_samples}")
    if not np.all(np.isfinite(y)):
        raise ValueError("responses contain non-finite values (NaN or inf)")
    return y


def _check_prediction_shapes(items: list[tuple[str, Any]], shape: tuple[int, int]) -> None:
    for name, arr in items:
        got = tuple(arr.shape)
        if len(got) == 1 and shape[1] == 1:
            got = (got[0], 1)
        if got != shape:
            raise ValueError(
                f"predictions of instruction {name!r} have shape {tuple(arr.shape)}, "
                f"responses have {shape}"
            )


def _check_masks(masks: Mapping[str, Any], n_targets: int) -> tuple[tuple[str, ...], np.ndarray]:
    """ROI names and a bool matrix of shape (n_rois, n_targets)."""
    if not masks:
        raise ValueError("no ROI masks given")
    rows = []
    for name, mask in masks.items():
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (n_targets,):
            raise ValueError(f"mask {name!r} must be bool of shape ({n_targets},)")
        if not m.any():
            raise ValueError(f"ROI {name!r} has no targets")
        rows.append(m)
    return tuple(str(k) for k in masks), np.stack(rows)


def _check_noise_ceiling(nc: Any, n_targets: int, used: np.ndarray) -> np.ndarray:
    """Noise ceiling as float64 (n_targets,); must lie in (0, 1] on the targets in an ROI."""
    nc = np.asarray(nc, dtype=np.float64)
    if nc.ndim == 0:
        nc = np.full(n_targets, float(nc))
    if nc.shape != (n_targets,):
        raise ValueError(f"noise ceiling has shape {nc.shape}, expected ({n_targets},)")
    v = nc[used]
    bad = ~np.isfinite(v) | (v <= 0) | (v > 1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} noise-ceiling value(s) of targets inside an ROI lie outside "
            "(0, 1]: pass NC as a fraction (NC% / 100) and drop targets without a ceiling "
            "from the masks (see core.encoding.ceiling.ceiling_mask)"
        )
    return nc


def _check_counts(counts: Any, n_test: int) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != n_test:
        raise ValueError(f"counts must have shape (n_boot, {n_test}), got {c.shape}")
    _check_n_boot(c.shape[0])
    if not np.all(np.isfinite(c)) or np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError("counts must be non-negative integers")
    if np.any(c.sum(1) != n_test):
        raise ValueError(f"every resample (row of counts) must draw {n_test} images")
    return c


def _block_size(n_rows: int, n_test: int, budget: int) -> int:
    """Targets per block so that the float64 block arrays stay within ``budget`` bytes.

    Per target: the moments (n_test x 5), their sums (n_rows x 5) and the element-wise
    temporaries (about 9 more n_rows-long float64 columns, measured with tracemalloc).
    """
    per_target = 8 * (5 * n_test + 14 * n_rows)
    return max(1, int(budget // per_target))


# --------------------------------------------------------------------------- kernels


def _centred(block: Array) -> Array:
    return block - block.mean(0)


def _side_by_side(ops: ArrayOps, parts: list[Array]) -> Array:
    """Column-wise concatenation of (n, B) blocks on any backend, shape (n, B * len(parts))."""
    n, b = parts[0].shape
    out = ops.empty((n, b * len(parts)), "float64")
    for k, part in enumerate(parts):
        out[:, k * b : (k + 1) * b] = part
    return out


def _safe_ratio(num: Array, var_a: Array, var_b: Array) -> Array:
    """``num / sqrt(var_a var_b)`` clipped to [-1, 1], 0 where either variance is zero."""
    den = var_a * var_b
    ok = den > 0
    den += ~ok  # 1 where a variance is zero, so the division below is harmless there
    den **= 0.5
    out = num / den
    out *= ok
    return out.clip(-1.0, 1.0)


def _sum_of_squares(s_x: Array, s_xx: Array, n: Array) -> Array:
    """``s_xx - s_x**2 / n`` (sum of squared deviations), 0 where it is below round-off.

    A resample that draws one value only (possible with few or discrete values) leaves a
    round-off residue of ~1e-16 s_xx, which would give a meaningless r; it is set to 0.
    """
    ss = s_x * s_x
    ss /= n
    ss -= s_xx
    ss *= -1.0
    ss *= ss > _ZERO_VARIANCE * s_xx
    return ss


def _covariance_sum(s_xy: Array, s_x: Array, s_y: Array, n: Array) -> Array:
    """``s_xy - s_x s_y / n`` (sum of cross-products of deviations)."""
    cov = s_x * s_y
    cov /= n
    cov -= s_xy
    cov *= -1.0
    return cov


def _resampled_sums(ops: ArrayOps, counts: Array, moments: Array, jackknife: bool) -> Array:
    """Sums of per-image moments over every row: all images, each resample, each jackknife.

    Parameters
    ----------
    ops : ArrayOps (float64)
    counts : (n_boot, n_test) resample counts
    moments : (n_test, k) per-image moments of a target block
    jackknife : bool
        Add the ``n_test`` leave-one-image-out rows (total minus one image: no product needed).

    Returns
    -------
    sums : (1 + n_boot [+ n_test], k), float64. Row 0 sums all images once.
    """
    n_boot, n_test = counts.shape
    total = moments.sum(0)
    out = ops.empty((1 + n_boot + (n_test if jackknife else 0), moments.shape[1]), "float64")
    out[0] = total
    ops.matmul(counts, moments, out=out[1 : 1 + n_boot])
    if jackknife:
        out[1 + n_boot :] = total - moments
    return out


def _draws_per_row(n_boot: int, n_test: int, jackknife: bool) -> np.ndarray:
    """Images drawn in each row of :func:`_resampled_sums`, shape (n_rows, 1)."""
    n = np.full(1 + n_boot + (n_test if jackknife else 0), float(n_test))
    n[1 + n_boot :] = n_test - 1
    return n[:, None]


def _resampled_variance(
    ops: ArrayOps, counts: Array, n: Array, xc: Array, jackknife: bool
) -> tuple[Array, Array]:
    """Resampled sums of a centred block and of its squared deviations.

    Parameters
    ----------
    ops : ArrayOps
    counts : (n_boot, n_test); n : (n_rows, 1) draws per row (:func:`_draws_per_row`)
    xc : (n_test, B) centred block
    jackknife : bool

    Returns
    -------
    s_x : (n_rows, B) resampled sums of x; ss : (n_rows, B) sums of squared deviations
    """
    b = xc.shape[1]
    sums = _resampled_sums(ops, counts, _side_by_side(ops, [xc, xc * xc]), jackknife)
    s_x, s_xx = sums[:, :b], sums[:, b:]
    return s_x, _sum_of_squares(s_x, s_xx, n)


def _resampled_r(
    ops: ArrayOps,
    counts: Array,
    n: Array,
    yc: Array,
    s_y: Array,
    ss_y: Array,
    pc: Array,
    jackknife: bool,
) -> Array:
    """Per-resample Pearson r of one instruction's block, shape (n_rows, B).

    ``yc``, ``pc`` : centred (n_test, B) blocks of responses and predictions; ``s_y``,
    ``ss_y``: the shared response sums of :func:`_resampled_variance`.
    """
    b = pc.shape[1]
    moments = _side_by_side(ops, [pc, pc * pc, yc * pc])
    sums = _resampled_sums(ops, counts, moments, jackknife)
    s_p, s_pp, s_yp = sums[:, :b], sums[:, b : 2 * b], sums[:, 2 * b :]
    return _safe_ratio(_covariance_sum(s_yp, s_y, s_p, n), ss_y, _sum_of_squares(s_p, s_pp, n))


def _roi_weights(roi_masks: np.ndarray, nc: np.ndarray | None) -> np.ndarray:
    """Weights (n_targets, n_rois[*2]) turning per-target r into ROI means (r, then r/sqrt(nc))."""
    w = (roi_masks / roi_masks.sum(1, keepdims=True)).T
    if nc is None:
        return w
    inv = np.zeros_like(nc)
    ok = np.isfinite(nc) & (nc > 0)
    inv[ok] = 1.0 / np.sqrt(nc[ok])
    return np.concatenate([w, w * inv[:, None]], axis=1)


def _prediction_block(name: str, arr: Any, cols: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    block = np.asarray(a.reshape(a.shape[0], -1)[:, cols], dtype=np.float64)
    bad = ~np.isfinite(block)
    if bad.any():
        first = int(cols[np.flatnonzero(bad.any(0))[0]])
        raise ValueError(
            f"predictions of instruction {name!r} contain non-finite values (NaN or inf), "
            f"first at target {first}"
        )
    return block


# --------------------------------------------------------------------------- public API


def bootstrap_roi_scores(
    y_true: Any,
    y_pred: Any,
    masks: Mapping[str, Any],
    *,
    noise_ceiling: Any = None,
    n_boot: int = 1000,
    seed: int = 0,
    counts: Any = None,
    instructions: Sequence[str] | None = None,
    jackknife: bool = False,
    target_block: int | None = None,
    min_samples: int = MIN_TEST_SAMPLES,
    backend: str = "numpy",
) -> BootstrapScores:
    """Bootstrap distribution of ROI-mean r (and r / sqrt(NC)) over the test images.

    Parameters
    ----------
    y_true : array-like of shape (n_test, n_targets)
        Measured test responses (float32 is kept and cast to float64 one block at a time).
    y_pred : array of shape (n_test, n_targets) (one instruction), array of shape
        (n_instructions, n_test, n_targets), a sequence of such 2-D arrays, or a mapping
        instruction name -> 2-D array
        Predictions. Arrays are read one target block at a time, so memory-mapped arrays
        (``np.load(path, mmap_mode="r")``) are never loaded whole; float32 is fine (each block
        is cast to float64).
    masks : mapping of ROI name -> bool array of shape (n_targets,)
        Targets averaged in each ROI (ROIs may overlap). Targets in no ROI are skipped.
    noise_ceiling : array-like of shape (n_targets,) or float, optional
        Noise ceiling as a fraction in (0, 1] (NSD NC% / 100) on every target inside an ROI;
        gives the normalised alignment ``r / sqrt(nc)`` as well.
    n_boot : int
        Resamples (>= 1; use >= 1,000 for 95% intervals). Ignored when ``counts`` is given.
    seed : int
        Seed of :func:`resample_indices`.
    counts : array-like of shape (n_boot, n_test), optional
        Precomputed resample counts (e.g. the same images resampled for several subjects).
    instructions : sequence of str, optional
        Names of the predictions (not with a mapping); default "0", "1", ...
    jackknife : bool
        Also compute leave-one-image-out ROI means (for BCa intervals): ``n_test`` more rows,
        each the all-image sums minus one image's moments (no extra matrix product).
    target_block : int, optional
        Targets per block; default sized to a ~256 MB float64 working set.
    min_samples : int
        Fewest test images accepted.
    backend : {"numpy", "torch", "torch_cuda", "auto"}
        Where the block products run (float64 throughout; see
        :func:`core.backend.resolve_backend`). ``"torch_cuda"`` suits GPUs with full-rate FP64
        (A100, H100/H200); validation and the results stay in numpy.

    Returns
    -------
    BootstrapScores
        ``r`` has shape (n_instructions, n_boot, n_rois); ``observed_r`` (n_instructions,
        n_rois) equals the ROI mean of :func:`core.encoding.scores.pearson_r` on all images.
        A target whose resampled predictions or responses are constant gets r = 0 in that
        resample (the convention of :func:`~core.encoding.scores.pearson_r`).

    Raises
    ------
    ValueError
        Shape mismatch, NaN/inf in responses or predictions, fewer than ``min_samples`` test
        images, responses constant over the test images on a target inside an ROI, a bad
        mask or noise ceiling, ``n_boot < 1`` or malformed counts.
    """
    y = _check_responses(y_true, min_samples)
    n_test, n_targets = y.shape
    items = _as_instructions(y_pred, instructions)
    _check_prediction_shapes(items, (n_test, n_targets))
    roi_names, roi_masks = _check_masks(masks, n_targets)
    used = roi_masks.any(0)
    _check_varying_responses(y, used)
    nc = None if noise_ceiling is None else _check_noise_ceiling(noise_ceiling, n_targets, used)
    if counts is None:
        _check_n_boot(n_boot)
        boot, used_seed = resample_counts(n_test, n_boot, seed), seed
    else:
        boot, used_seed = _check_counts(counts, n_test), None
    if target_block is not None and target_block < 1:
        raise ValueError("target_block must be >= 1")
    acc = _accumulate_roi_means(y, items, np.flatnonzero(used), _roi_weights(roi_masks, nc),
                                np.ascontiguousarray(boot), jackknife, target_block,
                                get_ops(backend, "float64"))
    return _package(acc, items, roi_names, roi_masks, n_test, boot.shape[0], used_seed, nc,
                    jackknife)


def _check_varying_responses(y: np.ndarray, used: np.ndarray) -> None:
    const = used & (np.ptp(y, axis=0) == 0)
    if const.any():
        idx = np.flatnonzero(const)
        raise ValueError(
            f"{idx.size} target(s) inside an ROI have constant responses over the test set "
            f"(first: {idx[:10].tolist()}); their correlation is undefined"
        )


def _accumulate_roi_means(
    y: np.ndarray,
    items: list[tuple[str, Any]],
    cols_all: np.ndarray,
    weights: np.ndarray,
    boot: np.ndarray,
    jackknife: bool,
    target_block: int | None,
    ops: ArrayOps,
) -> np.ndarray:
    """ROI means of every row's per-target r, block by block of targets.

    Parameters
    ----------
    ops : ArrayOps (float64) of the backend the blocks are computed on
    y : (n_test, n_targets) responses; items : [(name, (n_test, n_targets) predictions)]
    cols_all : (n_used,) targets inside some ROI
    weights : (n_targets, n_cols) from :func:`_roi_weights`
    boot : (n_boot, n_test) resample counts
    jackknife : bool
    target_block : int or None

    Returns
    -------
    acc : (n_instructions, n_rows, n_cols), rows as in :func:`_resampled_sums`
    """
    n_test = y.shape[0]
    n_rows = 1 + boot.shape[0] + (n_test if jackknife else 0)
    if target_block is None:
        target_block = _block_size(n_rows, n_test, DEFAULT_BLOCK_BYTES)
    n_draws = ops.asarray(_draws_per_row(boot.shape[0], n_test, jackknife), "float64")
    counts = ops.asarray(boot, "float64")
    acc = np.zeros((len(items), n_rows, weights.shape[1]))
    for start in range(0, cols_all.size, target_block):
        cols = cols_all[start : start + target_block]
        yc = _centred(ops.asarray(y[:, cols], "float64"))
        s_y, ss_y = _resampled_variance(ops, counts, n_draws, yc, jackknife)
        w = ops.asarray(weights[cols], "float64")
        for i, (name, arr) in enumerate(items):
            pc = _centred(ops.asarray(_prediction_block(name, arr, cols), "float64"))
            r = _resampled_r(ops, counts, n_draws, yc, s_y, ss_y, pc, jackknife)
            acc[i] += ops.to_numpy(r @ w)
    return acc


def _package(
    acc: np.ndarray,
    items: list[tuple[str, Any]],
    roi_names: tuple[str, ...],
    roi_masks: np.ndarray,
    n_test: int,
    n_boot: int,
    seed: int | None,
    nc: np.ndarray | None,
    jackknife: bool,
) -> BootstrapScores:
    """Split the accumulated (n_instr, 1 + n_boot [+ n_test], n_rois[*2]) sums into fields."""
    k = len(roi_names)
    boot = slice(1, 1 + n_boot)
    jack = slice(1 + n_boot, None)
    r, norm = acc[..., :k], (acc[..., k:] if nc is not None else None)
    return BootstrapScores(
        instructions=tuple(name for name, _ in items),
        rois=roi_names,
        n_targets=roi_masks.sum(1),
        n_test=n_test,
        seed=seed,
        observed_r=r[:, 0].copy(),
        r=r[:, boot].copy(),
        observed_normalized=None if norm is None else norm[:, 0].copy(),
        normalized=None if norm is None else norm[:, boot].copy(),
        jackknife_r=r[:, jack].copy() if jackknife else None,
        jackknife_normalized=norm[:, jack].copy() if (jackknife and norm is not None) else None,
    )


# --------------------------------------------------------------------------- intervals


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def percentile_interval(samples: Any, level: float = 0.95, axis: int = 0) -> np.ndarray:
    """Percentile bootstrap interval.

    Parameters
    ----------
    samples : array-like, resamples along ``axis``
    level : float
        Coverage, e.g. 0.95.
    axis : int

    Returns
    -------
    interval : ndarray of shape (2, *rest)
        Lower and upper ``(1 -+ level) / 2`` quantiles (linear interpolation).
    """
    _check_level(level)
    a = (1 - level) / 2
    return np.quantile(np.asarray(samples, dtype=np.float64), [a, 1 - a], axis=axis)


def bca_interval(
    samples: Any, observed: Any, jackknife: Any, level: float = 0.95, axis: int = 0
) -> np.ndarray:
    """Bias-corrected and accelerated (BCa) bootstrap interval (Efron 1987).

    ``z0 = Phi^-1(P*(theta* < theta) + P*(theta* = theta) / 2)``; the acceleration
    ``a = sum(d**3) / (6 sum(d**2)**1.5)`` with ``d = mean(theta_jack) - theta_jack``; the
    interval is the ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` quantiles of the resamples for
    ``z = Phi^-1((1 -+ level) / 2)``. With ``z0 = a = 0`` it is the percentile interval.

    Parameters
    ----------
    samples : array-like, resamples along ``axis``, shape (..., n_boot, ...)
    observed : array-like of the shape of ``samples`` without ``axis``
    jackknife : array-like, leave-one-out values along ``axis``, shape (..., n_test, ...)
    level : float
    axis : int

    Returns
    -------
    interval : ndarray of shape (2, *rest)
    """
    _check_level(level)
    s = np.moveaxis(np.asarray(samples, dtype=np.float64), axis, 0)
    j = np.moveaxis(np.asarray(jackknife, dtype=np.float64), axis, 0)
    obs = np.asarray(observed, dtype=np.float64)
    below = (s < obs).mean(0) + 0.5 * (s == obs).mean(0)
    z0 = stats.norm.ppf(np.clip(below, 1.0 / (2 * s.shape[0]), 1 - 1.0 / (2 * s.shape[0])))
    d = j.mean(0) - j
    den = 6.0 * (d * d).sum(0) ** 1.5
    acc = np.divide((d**3).sum(0), den, out=np.zeros_like(den), where=den > 0)
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        z = stats.norm.ppf(q)
        adj = stats.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
        out.append(_quantile_per_cell(s, adj))
    return np.stack(out)


def _quantile_per_cell(s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantile ``q[cell]`` of ``s[:, cell]`` (linear interpolation), shape of ``q``."""
    srt = np.sort(s, axis=0)
    pos = np.clip(q, 0, 1) * (s.shape[0] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, s.shape[0] - 1)
    frac = pos - lo
    lo_v = np.take_along_axis(srt, lo[None], 0)[0]
    hi_v = np.take_along_axis(srt, hi[None], 0)[0]
    return lo_v + frac * (hi_v - lo_v)


def bootstrap_pvalue(differences: Any, axis: int = 0) -> np.ndarray:
    """Two-sided bootstrap p-value of H0: difference = 0 (percentile-interval inversion).

    ``p = min(1, 2 min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (n_boot + 1))``.

    Parameters
    ----------
    differences : array-like, resampled differences along ``axis``
    axis : int

    Returns
    -------
    p : ndarray of the shape without ``axis``, in ``[2 / (n_boot + 1), 1]``
        1 when every resampled difference is 0 (identical predictions).
    """
    d = np.moveaxis(np.asarray(differences, dtype=np.float64), axis, 0)
    n = d.shape[0]
    low = 1.0 + (d <= 0).sum(0)
    high = 1.0 + (d >= 0).sum(0)
    return np.minimum(1.0, 2.0 * np.minimum(low, high) / (n + 1.0))


def _interval(
    samples: np.ndarray,
    observed: np.ndarray,
    jackknife: np.ndarray | None,
    level: float,
    method: str,
) -> np.ndarray:
    """Interval along axis 0 of ``samples`` by ``method``; shape (2, *observed.shape)."""
    if method == "percentile":
        return percentile_interval(samples, level, axis=0)
    if method == "bca":
        if jackknife is None:
            raise ValueError("BCa needs jackknife values: call bootstrap_roi_scores(jackknife=True)")
        return bca_interval(samples, observed, jackknife, level, axis=0)
    raise ValueError(f"unknown interval method {method!r}; expected one of {CI_METHODS}")


def score_intervals(
    scores: BootstrapScores,
    kind: str = "normalized",
    level: float = 0.95,
    method: str = "percentile",
) -> pd.DataFrame:
    """Bootstrap interval of every instruction's ROI score.

    Parameters
    ----------
    scores : BootstrapScores
    kind : {"r", "normalized"}
    level : float
    method : {"percentile", "bca"}

    Returns
    -------
    DataFrame, one row per (instruction, ROI), columns
        instruction, roi, n_targets, kind, score (on all test images), ci_low, ci_high,
        se (bootstrap standard deviation), level, method, n_boot.
    """
    obs, res, jack = scores.arrays(kind)
    rows = []
    for i, name in enumerate(scores.instructions):
        ci = _interval(res[i], obs[i], None if jack is None else jack[i], level, method)
        se = res[i].std(0, ddof=1) if scores.n_boot > 1 else np.full(len(scores.rois), np.nan)
        for k, roi in enumerate(scores.rois):
            rows.append({
                "instruction": name, "roi": roi, "n_targets": int(scores.n_targets[k]),
                "kind": kind, "score": float(obs[i, k]), "ci_low": float(ci[0, k]),
                "ci_high": float(ci[1, k]), "se": float(se[k]), "level": level,
                "method": method, "n_boot": scores.n_boot,
            })
    return pd.DataFrame(rows)


def paired_differences(
    scores: BootstrapScores,
    reference: str,
    kind: str = "normalized",
    level: float = 0.95,
    method: str = "percentile",
) -> pd.DataFrame:
    """Paired bootstrap interval and p-value of every instruction minus a reference, per ROI.

    The difference is taken inside each resample (same images for both instructions), so its
    interval reflects the paired uncertainty, which is usually much narrower than the two
    intervals of :func:`score_intervals` suggest.

    Parameters
    ----------
    scores : BootstrapScores
    reference : str
        Instruction every other one is compared with.
    kind : {"r", "normalized"}
    level : float
    method : {"percentile", "bca"}
        Interval method; the p-value is always :func:`bootstrap_pvalue`.

    Returns
    -------
    DataFrame, one row per (instruction != reference, ROI), columns
        instruction, reference, roi, n_targets, kind, score, reference_score, difference
        (score - reference_score on all images), ci_low, ci_high, p (two-sided), min_p
        (``2 / (n_boot + 1)``), level, method, n_boot.
    """
    if reference not in scores.instructions:
        raise ValueError(f"reference {reference!r} not among {scores.instructions}")
    obs, res, jack = scores.arrays(kind)
    ref = scores.instructions.index(reference)
    rows = []
    for i, name in enumerate(scores.instructions):
        if i == ref:
            continue
        d_obs, d_res = obs[i] - obs[ref], res[i] - res[ref]
        d_jack = None if jack is None else jack[i] - jack[ref]
        ci = _interval(d_res, d_obs, d_jack, level, method)
        p = bootstrap_pvalue(d_res)
        for k, roi in enumerate(scores.rois):
            rows.append({
                "instruction": name, "reference": reference, "roi": roi,
                "n_targets": int(scores.n_targets[k]), "kind": kind,
                "score": float(obs[i, k]), "reference_score": float(obs[ref, k]),
                "difference": float(d_obs[k]), "ci_low": float(ci[0, k]),
                "ci_high": float(ci[1, k]), "p": float(p[k]),
                "min_p": 2.0 / (scores.n_boot + 1), "level": level, "method": method,
                "n_boot": scores.n_boot,
            })
    return pd.DataFrame(rows)
