"""The one mesh type of every flatmap: one hemisphere's flattened (and inflated) surface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
