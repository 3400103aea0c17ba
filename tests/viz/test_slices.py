"""Volume slices: a func1pt8mm map without NSD's transform files is drawn on the volume (each
target back in its voxel, turned to RAS+), and the missing files are named."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.viz.maps import BrainMap
from tests.data.fixtures_nsd import write_nsd, write_transforms

SUBJ = "subj01"
SHAPE = (9, 8, 7)


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    return write_nsd(tmp_path_factory.mktemp("nsd-slices") / "nsd", subjects=(SUBJ,),
                     sessions=(1,), volume_formats=("nifti",), shape=SHAPE)  # fmt: skip


@pytest.fixture(scope="module")
def dataset(nsd):
    from core.data.nsd import open_nsd

    return open_nsd("nsd-slices", nsd.root, cache=False)


def test_every_target_goes_back_to_its_voxel(nsd, dataset):
    from core.viz.slices import target_index_volume

    index, zooms = target_index_volume(dataset, SUBJ)
    voxels = np.argwhere(nsd.general[SUBJ] == 1)  # the targets, in target order
    assert index.shape == SHAPE and np.allclose(zooms, 1.8)
    assert dataset.subject(SUBJ).targets.geometry is None  # no transforms: no surface mapping
    np.testing.assert_array_equal(index[tuple(voxels.T)], np.arange(len(voxels)))
    assert (index >= 0).sum() == len(voxels)  # nothing else


def test_a_flipped_volume_is_turned_to_ras(nsd, tmp_path):
    """NSD's volumes in another orientation: the slices still show left on the left."""
    import nibabel as nib

    from core.data.nsd import open_nsd
    from core.viz.slices import target_index_volume

    root = tmp_path / "nsd"
    shutil.copytree(nsd.root, root)
    roi = root / "nsddata/ppdata" / SUBJ / "func1pt8mm/roi"
    for path in roi.glob("*.nii.gz"):  # x runs right to left (LAS)
        img = nib.load(path)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), np.diag([-1.8, 1.8, 1.8, 1.0])), path)
    index, _ = target_index_volume(open_nsd("nsd-flip", root, cache=False), SUBJ)
    voxels = np.argwhere(nsd.general[SUBJ] == 1)
    flipped = voxels.copy()
    flipped[:, 0] = SHAPE[0] - 1 - voxels[:, 0]
    np.testing.assert_array_equal(index[tuple(flipped.T)], np.arange(len(voxels)))


def test_cuts_go_through_the_coloured_targets(nsd, dataset):
    from core.viz.slices import slice_cuts, target_index_volume

    index, _ = target_index_volume(dataset, SUBJ)
    voxels = np.argwhere(nsd.general[SUBJ] == 1)
    shown = (voxels[:, 2] == 4) & (voxels[:, 0] == 2)
    assert shown.any()
    cx, cy, cz = slice_cuts(index, shown)
    assert cz == 4 and cx == 2
    assert slice_cuts(index, np.zeros(len(voxels), bool))[2] == int(
        np.argmax(np.bincount(voxels[:, 2], minlength=SHAPE[2]))
    )  # nothing shown: the slices holding the most targets


def test_slice_view_renders_values_and_categories(dataset):
    from core.viz.slices import slice_figure, target_index_volume
    from core.viz.views import png

    index, zooms = target_index_volume(dataset, SUBJ)
    n = dataset.subject(SUBJ).n_targets
    rng = np.random.default_rng(0)
    values = BrainMap.of_values("v", rng.normal(size=n), label="normalized alignment",
                                title="IC · subj01")  # fmt: skip
    best = BrainMap.of_categories("c", rng.integers(-1, 3, n), ["IC", "IU1", "VQ1"],
                                  title="best instruction")  # fmt: skip
    for m in (values, best):
        data = png(slice_figure(index, m, zooms, note="a note", simulated=True))
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_the_missing_transform_files_are_named(nsd, tmp_path):
    from core.data.nsd import open_nsd
    from core.viz.slices import no_surface_note

    root = tmp_path / "nsd"
    shutil.copytree(nsd.root, root)
    ds = open_nsd("nsd-note", root, cache=False)
    note = no_surface_note(ds, SUBJ)
    assert "8 of NSD's transform files missing in nsddata/ppdata/subj01/transforms/" in note
    assert "lh.func1pt8-to-layerB1.mgz" in note and "rh.white-to-fsaverage.mgz" in note
    write_transforms(root, SUBJ, nsd.general[SUBJ], skip=("rh.white-to-fsaverage",))
    note = no_surface_note(ds, SUBJ)
    assert "1 of NSD's transform files missing" in note and "(rh.white-to-fsaverage.mgz;" in note
