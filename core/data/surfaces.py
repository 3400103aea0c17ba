"""Cortical surface meshes for flatmaps: one loader per surface family, one mesh type for all.

A surface id names where a dataset's :class:`~core.data.dataset.TargetGeometry` lives:

- ``"pycortex:S1"``: pycortex's bundled subject (flat and inflated surfaces from its filestore);
- ``"fsaverage:<folder>"``: a FreeSurfer subject folder (an NSD folder's fsaverage);
- ``"nilearn:fsaverage5"``: nilearn's bundled fsaverage5.

The mesh type and the hemisphere names live in :mod:`core.data.flat_mesh`.

Meshes are cached per process; loading pycortex S1's flat surface takes ~0.5 s the first time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.data.dataset import DatasetError
from core.data.flat_mesh import HEMIS, FlatMesh

#: Surface-id prefixes and the loaders of their families (the real-data loaders live in
#: :mod:`core.data.fsaverage`, imported when first needed).
PREFIXES = ("pycortex:", "fsaverage:", "nilearn:")


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
    if surface_id.startswith("pycortex:"):
        return _pycortex_loader(surface_id, hemi)
    if surface_id.startswith(("fsaverage:", "nilearn:")):
        from core.data.fsaverage import load_real_surface

        return load_real_surface(surface_id, hemi)
    raise DatasetError(
        f"no loader for surface {surface_id!r}; known prefixes: {', '.join(PREFIXES)}"
    )
