"""BrainPrompt core library: datasets, models, features, encoders, visualisation and the pipeline.

Import order of the sub-packages follows the data's path (see ``docs``): ``core.data`` and
``core.models`` know nothing of each other; ``core.features`` joins them; ``core.encoding`` fits
encoders on features; ``core.viz`` draws; ``core.pipeline`` orchestrates. Nothing in ``core``
imports streamlit.
"""

from core.config import CODE_VERSION, setup_environment

__all__ = ["CODE_VERSION", "setup_environment"]
__version__ = CODE_VERSION

setup_environment()
