"""NSD's images as a :class:`~core.data.dataset.StimulusSet`: lazy per-image reads of ``imgBrick``.

``nsd_stimuli.hdf5`` holds ``imgBrick`` of shape (73000, 425, 425, 3), uint8 (~39.5 GB); one image
is read per call, the file handle is opened on first use and kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from core.data.dataset import DatasetError
from core.data.nsd_files import read_stim_info
from core.data.nsd_layout import IMAGE_SHAPE, N_STIMULI


def check_stimulus_file(path: Path) -> tuple[int, ...]:
    """Open ``nsd_stimuli.hdf5`` and check ``imgBrick``; return its shape.

    Raises
    ------
    DatasetError
        Naming the file and the expected dataset/shape.
    """
    import h5py

    path = Path(path)
    expected = f"dataset imgBrick of shape {(N_STIMULI,) + IMAGE_SHAPE}, uint8"
    if not path.exists():
        raise DatasetError(f"{path}: expected {expected}; found no file")
    try:
        with h5py.File(path, "r") as fh:
            if "imgBrick" not in fh:
                raise DatasetError(f"{path}: expected {expected}; found datasets {list(fh.keys())}")
            dset = fh["imgBrick"]
            if (
                dset.shape[1:] != IMAGE_SHAPE
                or dset.dtype != np.uint8
                or dset.shape[0] != N_STIMULI
            ):
                raise DatasetError(
                    f"{path}: expected {expected}; found shape {dset.shape}, {dset.dtype}"
                )
            return tuple(dset.shape)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{path}: expected an HDF5 file with {expected}; found {exc}") from exc


class NsdStimuli:
    """NSD images by 0-based 73k id.

    Parameters
    ----------
    ids : array of shape (n_images,), int64
        The 0-based 73k ids this dataset uses.
    path : Path
        ``nsd_stimuli.hdf5``.
    info_path : Path, optional
        ``nsd_stim_info_merged.csv`` (for :meth:`attributes`).
    """

    def __init__(self, ids: np.ndarray, path: Path, info_path: Path | None = None) -> None:
        self.ids = np.sort(np.asarray(ids, dtype=np.int64))
        self.path = Path(path)
        self.info_path = Path(info_path) if info_path is not None else None
        self._file = None

    def _brick(self):
        if self._file is None:
            import h5py

            check_stimulus_file(self.path)
            self._file = h5py.File(self.path, "r")
        return self._file["imgBrick"]

    def load_image(self, stimulus_id: int) -> Image.Image:
        """Read one image (425 x 425 RGB)."""
        sid = int(stimulus_id)
        if not 0 <= sid < N_STIMULI:
            raise DatasetError(f"NSD stimulus id {sid} outside 0..{N_STIMULI - 1}")
        try:
            pixels = self._brick()[sid]
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"{self.path}: cannot read image {sid} of imgBrick: {exc}") from exc
        return Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="RGB")

    def attributes(self) -> pd.DataFrame | None:
        """The stimulus info rows (cocoId, shared1000, ...) of :attr:`ids`, or None without the CSV."""
        if self.info_path is None or not self.info_path.exists():
            return None
        df = read_stim_info(self.info_path)
        return df.loc[df.index.intersection(self.ids)]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
