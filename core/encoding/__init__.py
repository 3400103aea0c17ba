"""Voxelwise encoding: ridge encoders, scores, noise ceilings, significance, variance
partitioning and the encoder store.

Modules (each with one job):

* :mod:`core.encoding.alphas` -- alpha grids (``"paper"`` 60, ``"fast"`` 20 over 10..1e4)
* :mod:`core.encoding.ridge` -- eigendecomposition RidgeCV solver (himalaya's alpha selection)
* :mod:`core.encoding.estimator` -- :class:`RidgeEncoder` (scikit-learn style, z-scoring)
* :mod:`core.encoding.standardize` -- train-only z-scoring
* :mod:`core.encoding.scores` -- Pearson r, R2, noise-ceiling normalisation
* :mod:`core.encoding.ceiling` -- NC from ncsnr, cross-subject ceiling
* :mod:`core.encoding.roi` -- ROI masks and summaries
* :mod:`core.encoding.significance` -- permutation tests, BH FDR, paired comparisons
* :mod:`core.encoding.partition` -- variance partitioning, best-feature-space maps
* :mod:`core.encoding.store` -- safetensors + JSON encoder store
"""

from core.encoding.alphas import alpha_grid
from core.encoding.estimator import RidgeEncoder
from core.encoding.ridge import RidgeCVResult, solve_ridge_cv_eigh
from core.encoding.standardize import Standardizer

__all__ = ["RidgeCVResult", "RidgeEncoder", "Standardizer", "alpha_grid", "solve_ridge_cv_eigh"]
