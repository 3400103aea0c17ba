"""The words the app uses, explained once (without streamlit): the glossary every page's sidebar
shows (:data:`GLOSSARY`) and the three sentences on Explore's first screen
(:data:`WHAT_YOU_SEE`)."""

from __future__ import annotations

from core.results.fit import MIN_NC

#: What Explore's first screen shows, in three sentences.
WHAT_YOU_SEE = (
    "A multimodal language model reads the image together with an instruction and writes an "
    "answer; the mean of its hidden states over the answer's tokens, at one layer, is the "
    "**response embedding**. "
    "A **stored encoder** (a ridge regression fitted on the subject's training images) turns "
    "that embedding into a predicted response for every **target** of the brain, drawn on the "
    "flat map on the left beside what the subject's brain measured for the same image on the "
    "right. "
    "How well such predictions match on held-out test images, as a share of the **noise "
    "ceiling**, is the **normalized alignment** that every other page compares across "
    "instructions, layers, ROIs and models."
)

#: Term -> its meaning in this app (the sidebar's glossary, on every page).
GLOSSARY: dict[str, str] = {
    "Response embedding": (
        "The mean hidden state of the tokens a model generates in answer to an instruction "
        "about an image, at one layer: one vector per image, instruction and layer (the "
        "image-only baselines use their image features instead)."
    ),
    "Stored encoder": (
        "A voxelwise ridge regression from response embeddings to every target's response, "
        "fitted on a subject's training images and kept on disk, one per subject, model, "
        "instruction and layer: Explore predicts any image with it, uploads included."
    ),
    "Noise ceiling (NC)": (
        "The share of a target's response variance that repeats when the same image is shown "
        "again (from the repetitions, computed the NSD way): the most any model can predict. "
        f"Targets with an NC under {100 * MIN_NC:.0f}% get no normalized alignment."
    ),
    "Normalized alignment": (
        "The test-set correlation r between predicted and measured responses divided by the "
        "square root of the noise ceiling (r / √NC): 1 means as good as the data's noise "
        "allows, 0 means no relation. Scores are averaged over an ROI's targets."
    ),
    "Training z units": (
        "Responses z-scored per target with the mean and standard deviation of the subject's "
        "training images: 0 is the target's average response, +1 one standard deviation above. "
        "Predictions regress to the mean, so their range is narrower than the measured one."
    ),
    "CV-best layer": (
        "The model layer with the highest cross-validated score on the training images (mean "
        "over subjects and instructions, in the general visual mask). Every page reports at "
        "this layer; the test set never takes part in choosing it."
    ),
    "ROI": (
        "Region of interest: a named cortical area (V1-V3 early visual; OFA and FFA faces; EBA "
        "bodies; OPA, PPA and RSC places; IPS numbers; LOC objects). On the demo, pycortex "
        "S1's areas as each simulated subject's warp shifts them."
    ),
    "Target": (
        "One unit the encoders predict: a surface vertex or a voxel of the subject's brain "
        "data (on the demo, a simulated cortical location). Maps draw one value per target."
    ),
}
