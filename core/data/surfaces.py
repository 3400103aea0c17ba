"""Cortical surface meshes for flatmaps: one loader per surface family, one mesh type for all.

A surface id names where a dataset's :class:`~core.data.dataset.TargetGeometry` lives:

- ``"pycortex:S1"``: pycortex's bundled subject (flat and inflated surfaces from its filestore);
- other prefixes are added by the readers that need them with :func:`register_surface_loader`
  (e.g. ``"fsaverage"`` from an NSD folder, ``"nilearn:fsaverage5"``).

Meshes are cached per process; loading pycortex S1's flat surface takes ~0.5 s the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.data.dataset import DatasetError

HEMIS = ("lh", "rh")


@dataclass(frozen=True)
class FlatMesh:
    """One hemisphere's flattened surface.

    Parameters
    ----------
    coords : array of shape (n_vertices, 2), float32
        Flat 2-D coordinates (vertices cut from the flat patch may be NaN).
    faces : array of shape (n_faces, 3), int32
        Triangles of the flat patch (cut faces removed).
    inflated : array of shape (n_vertices, 3), float32, or None
        Inflated 3-D coordinates, for an inflated view where offered.
    """

    coords: np.ndarray
    faces: np.ndarray
    inflated: np.ndarray | None = None

    @property
    def n_vertices(self) -> int:
        return int(self.coords.shape[0])


_LOADERS: dict[str, Callable[[str, str], FlatMesh]] = {}


def register_surface_loader(prefix: str, loader: Callable[[str, str], FlatMesh]) -> None:
    """Register ``loader(surface_id, hemi) -> FlatMesh`` for ids starting with ``prefix``."""
    _LOADERS[prefix] = loader


def import_cortex():
    """Import pycortex quietly (it prints a notice about inkscape on first import)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import cortex
    return cortex


def _pycortex_loader(surface_id: str, hemi: str) -> FlatMesh:
    cortex = import_cortex()

    subject = surface_id.split(":", 1)[1]
    if subject not in cortex.db.subjects:
        raise DatasetError(f"pycortex has no subject {subject!r}")
    hemisphere = "lh" if hemi == "lh" else "rh"
    flat_pts, flat_faces = cortex.db.get_surf(subject, "flat", hemisphere=hemisphere)
    infl_pts, _ = cortex.db.get_surf(subject, "inflated", hemisphere=hemisphere)
    return FlatMesh(
        coords=np.asarray(flat_pts[:, :2], dtype=np.float32),
        faces=np.asarray(flat_faces, dtype=np.int32),
        inflated=np.asarray(infl_pts, dtype=np.float32),
    )


register_surface_loader("pycortex:", _pycortex_loader)


@lru_cache(maxsize=16)
def load_flat_mesh(surface_id: str, hemi: str) -> FlatMesh:
    """Load (cached) the flat mesh of one hemisphere.

    Parameters
    ----------
    surface_id : str
        See the module docstring.
    hemi : {"lh", "rh"}

    Raises
    ------
    DatasetError
        For an unknown surface id or hemisphere.
    """
    if hemi not in HEMIS:
        raise DatasetError(f"unknown hemisphere {hemi!r}; expected 'lh' or 'rh'")
    for attempt in range(2):
        for prefix, loader in _LOADERS.items():
            if surface_id.startswith(prefix):
                return loader(surface_id, hemi)
        if attempt == 0:
            import core.data.fsaverage  # noqa: F401  (registers the real-data surface loaders)
    raise DatasetError(
        f"no loader for surface {surface_id!r}; known prefixes: {', '.join(_LOADERS)}"
    )
