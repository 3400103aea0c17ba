"""Datasets (demo, NSD, Algonauts) in one representation; stimuli, ROIs, noise ceilings, geometry.

``core.data`` knows no models.
"""

from core.data.dataset import (
    Dataset,
    DatasetError,
    RoiFamily,
    StimulusSet,
    SubjectData,
    TargetGeometry,
    TargetSet,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "RoiFamily",
    "StimulusSet",
    "SubjectData",
    "TargetGeometry",
    "TargetSet",
]
