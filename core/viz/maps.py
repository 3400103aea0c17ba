"""One description of a brain map for every view of it: the flat PNG, the 3D surface, the
interactive target scatter and the slide export all colour a :class:`BrainMap` the same way.

A map is one value per target (continuous: a colour map and fixed limits) or one category per
target (e.g. the best instruction; ``-1`` = not shown). :meth:`BrainMap.target_rgba` gives each
target's colour exactly as :func:`core.viz.flatmap.flatmap_rgba` paints its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.viz.flatmap import CORTEX


def category_colours(names) -> list[tuple[float, float, float]]:
    """The colours of categories by name (:func:`core.viz.colours.named_colours`: one colour
    per instruction in every chart, map and export)."""
    from core.viz.colours import named_colours

    return named_colours(list(names))


@dataclass(frozen=True, eq=False)
class BrainMap:
    """A per-target map and how to colour it.

    Attributes
    ----------
    key : str
        Identifies the values (part of every cache key of a view of this map).
    title : str
        The figure title (what, which subject, layer...).
    label : str
        The colour bar label (continuous maps) or the legend title (categories).
    values : array of shape (n_targets,)
        Float values (NaN = no value, drawn as plain cortex) or int category indices (-1 = none).
    cmap : str
        Matplotlib colour map (continuous maps).
    limits : (float, float)
        Colour limits (continuous maps); values beyond are clipped.
    names : tuple of str
        Category names; a map with names is categorical.
    caption : str
        A sentence on what the map shows, for exported captions.
    """

    key: str
    title: str
    label: str
    values: np.ndarray = field(repr=False)
    cmap: str = "inferno"
    limits: tuple[float, float] = (0.0, 1.0)
    names: tuple[str, ...] = ()
    caption: str = ""

    @classmethod
    def of_values(
        cls,
        key: str,
        values: np.ndarray,
        *,
        label: str,
        title: str,
        cmap: str | None = None,
        limits: tuple[float, float] | None = None,
        symmetric: bool = False,
        caption: str = "",
    ) -> BrainMap:
        """A continuous map; limits default to percentiles (symmetric around 0 when asked) and
        the colour map to ``RdBu_r`` (symmetric) or ``inferno``, as :func:`views.value_map`."""
        from core.viz.views import value_limits

        values = np.asarray(values, dtype=np.float64)
        lim = limits if limits is not None else value_limits(values, symmetric)
        lim = (float(lim[0]), float(lim[1]))
        return cls(
            key=key, title=title, label=label, values=values,
            cmap=cmap or ("RdBu_r" if symmetric else "inferno"), limits=lim, caption=caption,
        )  # fmt: skip

    @classmethod
    def of_categories(
        cls, key: str, labels: np.ndarray, names: list[str] | tuple[str, ...], *, title: str,
        label: str = "category", caption: str = "",
    ) -> BrainMap:  # fmt: skip
        """A categorical map (``labels`` index ``names``; -1 = not shown)."""
        return cls(
            key=key, title=title, label=label, values=np.asarray(labels).astype(np.int64),
            names=tuple(names), caption=caption,
        )  # fmt: skip

    @property
    def categorical(self) -> bool:
        return bool(self.names)

    @property
    def n_targets(self) -> int:
        return int(self.values.shape[0])

    def shown(self) -> np.ndarray:
        """Which targets carry a colour (finite value, or a category >= 0)."""
        if self.categorical:
            return self.values >= 0
        return np.isfinite(self.values)

    def target_rgba(self) -> np.ndarray:
        """Each target's colour as the flat view paints it (plain cortex grey where not shown).

        Returns
        -------
        rgba : array of shape (n_targets, 4), float32 in 0..1
        """
        out = np.empty((self.n_targets, 4), np.float32)
        out[:] = (*CORTEX, 1.0)
        shown = self.shown()
        if self.categorical:
            table = np.array([(*c, 1.0) for c in category_colours(self.names)], np.float32)
            out[shown] = table[self.values[shown]]
            return out
        import matplotlib

        vmin, vmax = self.limits
        if vmax <= vmin:
            vmax = vmin + 1e-6
        scaled = np.clip((self.values[shown] - vmin) / (vmax - vmin), 0, 1)
        out[shown] = matplotlib.colormaps[self.cmap](scaled)
        return out

    def legend(self) -> list[tuple[str, tuple[float, float, float]]]:
        """(name, colour) of the categories that occur (categorical maps)."""
        if not self.categorical:
            return []
        colours = category_colours(self.names)
        present = sorted({int(v) for v in np.unique(self.values) if v >= 0})
        return [(self.names[i], colours[i]) for i in present]

    def figure(self, raster, rois=None, highlight=None, simulated=False):
        """The flat figure (matplotlib) of this map, as the pages show it."""
        from core.viz import views

        if self.categorical:
            return views.category_map(
                raster, self.values, list(self.names), title=self.title, rois=rois,
                highlight=highlight, simulated=simulated,
            )  # fmt: skip
        return views.value_map(
            raster, self.values, label=self.label, title=self.title, rois=rois,
            highlight=highlight, cmap=self.cmap, limits=self.limits, simulated=simulated,
        )  # fmt: skip


def hex_colours(rgba: np.ndarray) -> np.ndarray:
    """``#rrggbb`` strings of RGBA rows in 0..1."""
    rgb = np.clip(np.rint(np.asarray(rgba)[:, :3] * 255), 0, 255).astype(np.uint8)
    return np.array([f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb], dtype=object)


def colorscale(cmap: str, n: int = 11) -> list[list]:
    """A plotly/vega colour scale sampled from a matplotlib colour map: ``[[t, "rgb(...)"]]``."""
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    out = []
    for t in np.linspace(0, 1, n):
        r, g, b, _ = cm(float(t))
        out.append([round(float(t), 4), f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})"])
    return out
