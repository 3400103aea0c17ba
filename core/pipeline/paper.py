"""The published numbers of Oota et al., ICLR 2025, and the paper's configuration.

Values are read off the authors' figures (+-0.02; ../shared/docs/science.md). A test checks they
equal that document's tables, so a correction there must be made here too.
"""

from __future__ import annotations

#: Normalized brain alignment, mean over subjects: ROI group -> paper column -> value.
ROI_GROUP_TABLE: dict[str, dict[str, float]] = {
    "pRF visual (V1-hV4)": {
        "random init": 0.40, "InstructBLIP": 0.67, "IDEFICS": 0.60, "mPLUG-Owl": 0.64,
        "ViT-H": 0.49, "CLIP": 0.67,
    },
    "floc-places (OPA/PPA/RSC)": {
        "random init": 0.30, "InstructBLIP": 0.84, "IDEFICS": 0.76, "mPLUG-Owl": 0.83,
        "ViT-H": 0.55, "CLIP": 0.85,
    },
}  # fmt: skip
#: Reading precision of the published values.
PAPER_PRECISION = 0.02

#: ROI group -> ROI names (NSD label names and the demo's names).
ROI_GROUPS: dict[str, tuple[str, ...]] = {
    "pRF visual (V1-hV4)": ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4", "V1", "V2", "V3"),
    "floc-places (OPA/PPA/RSC)": ("OPA", "PPA", "RSC"),
}
#: Higher visual ROIs for the partition summary (faces, bodies, places, words).
#: (NSD's paper view has FBA and VWFA; tables scored before it, FBA-1/2 and VWFA-1/2.)
HIGHER_VISUAL = ("OFA", "FFA", "FFA-1", "FFA-2", "EBA", "FBA", "FBA-1", "FBA-2", "OPA", "PPA",
                 "RSC", "OWFA", "VWFA", "VWFA-1", "VWFA-2")  # fmt: skip
EARLY_VISUAL = ROI_GROUPS["pRF visual (V1-hV4)"]

#: Variance partitioning IC vs IU2 (unique IC | shared | unique IU2), early vs higher visual.
PARTITION_IC_IU2: dict[str, dict[str, float]] = {
    "early visual": {"unique IC": 0.276, "shared": 0.264, "unique IU2": 0.254},
    "higher visual": {"unique IC": 0.308, "shared": 0.409, "unique IU2": 0.269},
}

#: What the paper reports on instructions, per ROI (checked against the measured winners).
INSTRUCTION_CLAIMS: dict[str, str] = {
    "early visual": "image understanding (esp. IU1 colour) is best",
    "EBA": "captioning (IC) is best",
    "PPA": "captioning (IC) and VQA are best",
    "FFA": "captioning (IC) and VQA are best",
}

#: The paper's subjects (those present are used).
PAPER_SUBJECTS = ("subj01", "subj02", "subj05", "subj07")
#: Paper column -> registry model for real data.
PAPER_MODELS: dict[str, str] = {
    "InstructBLIP": "instructblip-vicuna-7b",
    "IDEFICS": "idefics-9b-instruct",
    "mPLUG-Owl": "mplug-owl-7b",
    "ViT-H": "vit-h",
    "CLIP": "clip-vit-l14",
}
#: Paper column -> the demo analog (the demo model stands for the MLLMs, its vision tower for
#: the vision-only ViT-H; there is no demo CLIP).
DEMO_MODELS: dict[str, str] = {
    "InstructBLIP": "demo-vlm",
    "ViT-H": "vision:demo-vlm",
    "random init": "random:demo-vlm",
}
PAIR = ("IC", "IU2")
