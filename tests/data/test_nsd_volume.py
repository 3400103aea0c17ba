"""func1pt8mm session readers in the real formats and chunkings: values identical to indexing
the whole volume, and HDF5 reads that follow NSD's chunks (never a full-volume block)."""

from __future__ import annotations

import h5py
import nibabel as nib
import numpy as np
import pytest
from fixtures_nsd import NSD_HDF5_CHUNKS, SUBJ01_GENERAL, SUBJ01_SHAPE, realistic_general

from core.data.dataset import DatasetError
from core.data.nsd_files import volume_index
from core.data.nsd_volume import (
    MAX_GAP,
    plan_hdf5_reads,
    read_hdf5_session,
    read_nifti_session,
)

SHAPE = (9, 7, 6)  # (X, Y, Z)


@pytest.fixture(scope="module")
def session():
    """A session (X, Y, Z, 750) int16 and a scattered mask over it."""
    rng = np.random.default_rng(3)
    betas = rng.integers(-32768, 32767, size=SHAPE + (750,), dtype=np.int16)
    mask = rng.random(SHAPE) < 0.3
    mask[0, 0, 0] = mask[-1, -1, -1] = True  # both corners: boxes reach the volume's edges
    return betas, mask


def whole_volume_read(betas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The reference: every voxel read, then the mask's voxels, (750, n) float32."""
    return (betas[mask].T.astype(np.float32) / np.float32(300.0)).astype(np.float32)


def write_hdf5(path, betas, chunks, compression=None):
    with h5py.File(path, "w") as fh:
        data = np.transpose(betas, (3, 2, 1, 0))
        fh.create_dataset("betas", data=data, chunks=chunks, compression=compression)
    return path


@pytest.mark.parametrize(
    "chunks",
    [NSD_HDF5_CHUNKS, None, (50, 6, 7, 9), (1, 6, 7, 9), (750, 2, 3, 4), (125, 2, 2, 2)],
    ids=["nsd", "contiguous", "trial-blocks", "one-trial", "voxel-blocks", "small-blocks"],
)
def test_hdf5_reader_equals_whole_volume_read(tmp_path, session, chunks):
    betas, mask = session
    path = write_hdf5(tmp_path / "betas_session01.hdf5", betas, chunks)
    got = read_hdf5_session(path, SHAPE, volume_index(mask))
    assert got.dtype == np.float32 and got.shape == (750, int(mask.sum()))
    np.testing.assert_array_equal(got, whole_volume_read(betas, mask))


def test_hdf5_reader_reads_compressed_chunks(tmp_path, session):
    betas, mask = session
    path = write_hdf5(tmp_path / "betas_session01.hdf5", betas, NSD_HDF5_CHUNKS, "gzip")
    got = read_hdf5_session(path, SHAPE, volume_index(mask))
    np.testing.assert_array_equal(got, whole_volume_read(betas, mask))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("volumes_per_read", [1, 7, 50, 750])
def test_nifti_reader_equals_whole_volume_read(tmp_path, session, suffix, volumes_per_read):
    betas, mask = session
    path = tmp_path / f"betas_session01{suffix}"
    nib.save(nib.Nifti1Image(betas, np.diag([1.8, 1.8, 1.8, 1])), path)
    got = read_nifti_session(path, SHAPE, volume_index(mask), volumes_per_read)
    np.testing.assert_array_equal(got, whole_volume_read(betas, mask))
    np.testing.assert_array_equal(got, np.asarray(nib.load(path).dataobj)[mask].T / np.float32(300))


def test_hdf5_reads_follow_nsd_chunks(tmp_path, session, monkeypatch):
    """Every h5py read takes all 750 trials of one chunk row's run: never a block of trials
    over the volume, and every kept voxel's chunk exactly once."""
    betas, mask = session
    path = write_hdf5(tmp_path / "betas_session01.hdf5", betas, NSD_HDF5_CHUNKS)
    selections = []
    original = h5py.Dataset.__getitem__

    def record(self, args, *rest, **kwargs):
        if self.name == "/betas":
            selections.append(args)
        return original(self, args, *rest, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", record)
    got = read_hdf5_session(path, SHAPE, volume_index(mask))
    np.testing.assert_array_equal(got, whole_volume_read(betas, mask))
    touched = np.zeros(SHAPE[::-1], dtype=np.int64)  # (Z, Y, X) chunk read counts
    for trials, zs, ys, xs in selections:
        assert (trials.start, trials.stop) == (0, 750)  # all trials of each chunk at once
        assert zs.stop - zs.start == 1 and ys.stop - ys.start == 1  # one chunk row
        touched[zs, ys, xs] += 1
    kept = np.transpose(mask, (2, 1, 0))
    assert (touched[kept] == 1).all()
    assert touched.max() == 1
    unused = touched.sum() - kept.sum()
    assert unused <= MAX_GAP * len(selections)
    assert touched.sum() < touched.size  # not the whole volume


def test_plan_at_full_size_reads_only_the_general_mask_chunks():
    """subj01's grid and a realistic nsdgeneral: the reads touch ~the mask's 15,724 chunks of
    699,192, each a chunk row's run (<= 81 chunks x 750 trials x 2 B = 122 kB)."""
    general = realistic_general()
    index = volume_index(general == 1)
    plan = plan_hdf5_reads(index, SUBJ01_SHAPE, NSD_HDF5_CHUNKS)
    chunks = sum(int(np.prod(r.box_shape)) for r in plan)
    assert SUBJ01_GENERAL <= chunks < 1.5 * SUBJ01_GENERAL
    assert max(750 * int(np.prod(r.box_shape)) * 2 for r in plan) <= 750 * 81 * 2
    columns = np.concatenate([r.columns for r in plan])
    np.testing.assert_array_equal(np.sort(columns), np.arange(index.size))


def test_plan_of_trial_chunks_keeps_blocks_within_budget():
    general = realistic_general()
    index = volume_index(general == 1)
    plan = plan_hdf5_reads(index, SUBJ01_SHAPE, None, budget=16 * 2**20)
    sizes = [(r.trials.stop - r.trials.start) * int(np.prod(r.box_shape)) * 2 for r in plan]
    assert max(sizes) <= 16 * 2**20
    assert plan[0].trials.start == 0 and plan[-1].trials.stop == 750
    blocks = plan_hdf5_reads(index, SUBJ01_SHAPE, (10, 83, 104, 81), budget=16 * 2**20)
    assert all((r.trials.stop - r.trials.start) % 10 == 0 for r in blocks)  # whole trial chunks


def test_plan_splits_runs_at_long_gaps():
    mask = np.zeros((40, 1, 1), dtype=bool)
    mask[[0, 1, 1 + MAX_GAP + 1, 30]] = True  # a gap of MAX_GAP unused chunks, then a long one
    plan = plan_hdf5_reads(volume_index(mask), (40, 1, 1), NSD_HDF5_CHUNKS)
    assert [(r.box[2].start, r.box[2].stop) for r in plan] == [(0, MAX_GAP + 3), (30, 31)]
    assert plan_hdf5_reads(np.array([], dtype=np.int64), (40, 1, 1), NSD_HDF5_CHUNKS) == []


def test_readers_name_the_file_on_errors(tmp_path, session):
    betas, mask = session
    index = volume_index(mask)
    with pytest.raises(DatasetError, match="betas_session09.hdf5.*no file"):
        read_hdf5_session(tmp_path / "betas_session09.hdf5", SHAPE, index)
    path = write_hdf5(tmp_path / "betas_session01.hdf5", betas[:, :, :3], NSD_HDF5_CHUNKS)
    with pytest.raises(DatasetError, match=r"betas_session01.hdf5: expected dataset /betas"):
        read_hdf5_session(path, SHAPE, index)
    nii = tmp_path / "betas_session02.nii.gz"
    nib.save(nib.Nifti1Image(betas, np.eye(4)), nii)
    nii.write_bytes(nii.read_bytes()[: nii.stat().st_size // 2])
    with pytest.raises(DatasetError, match="betas_session02.nii.gz.*truncated or corrupt"):
        read_nifti_session(nii, SHAPE, index)


@pytest.mark.parametrize("backend", ["gzip", "isal"])
def test_nifti_reader_gzip_backends_agree(tmp_path, session, monkeypatch, backend):
    import gzip
    import zlib

    import core.data.nsd_volume as nsd_volume

    betas, mask = session
    path = tmp_path / "betas_session01.nii.gz"
    nib.save(nib.Nifti1Image(betas, np.eye(4)), path)
    if backend == "isal":
        pytest.importorskip("isal")
        assert nsd_volume.gzip_opener()[0].__module__ == "isal.igzip"
    else:
        errors = (EOFError, OSError, zlib.error)
        monkeypatch.setattr(nsd_volume, "gzip_opener", lambda: (gzip.open, errors))
    got = read_nifti_session(path, SHAPE, volume_index(mask))
    np.testing.assert_array_equal(got, whole_volume_read(betas, mask))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(range(64))  # corrupt deflate data, intact header
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="betas_session01.nii.gz.*truncated or corrupt"):
        read_nifti_session(path, SHAPE, volume_index(mask))
