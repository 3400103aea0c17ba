"""The app's UI helpers, by concern (pages import this package as ``ui``):

- :mod:`pages.ui.loaders`: Cached loaders: datasets, subjects, results tables, per-target scores and rendered maps (st.cache_*).
- :mod:`pages.ui.frame`: The page frame: charts, the dataset picker, headers and badges, background-job buttons and logs, empty states.
- :mod:`pages.ui.links`: Deep links: every page's selections in the URL, read back on first load, and the copy-link button.
- :mod:`pages.ui.maps`: Brain maps on a page: the flat map, the 3D view, the target inspector, slide figures of a map.
- :mod:`pages.ui.export`: Downloads and the figures-for-slides panel.
- :mod:`pages.ui.first_start`: The first start: the grid started by itself on a home with no results, its progress.
- :mod:`pages.ui.glossary`: The glossary on every page, and what Explore's first screen shows.
"""

from __future__ import annotations

from pages.ui.export import (  # noqa: F401
    downloads,
    export_panel,
    grid_context,
    map_downloads,
)
from pages.ui.first_start import auto_start  # noqa: F401
from pages.ui.first_start import progress_panel as first_start_progress  # noqa: F401
from pages.ui.first_start import status as first_start_status  # noqa: F401
from pages.ui.frame import (  # noqa: F401
    chart,
    dataset_picker,
    job_button,
    job_log,
    mllm_rows,
    model_label,
    no_results_state,
    page_header,
    roi_highlight,
    simulated_badge,
)
from pages.ui.glossary import glossary, what_you_see  # noqa: F401
from pages.ui.links import (  # noqa: F401
    DATASET_KEY,
    ROI_KEY_SUFFIX,
    begin_links,
    copy_link_button,
    default_value,
    end_links,
    from_url,
    link,
    link_url,
    show_link,
    url_value,
)
from pages.ui.loaders import (  # noqa: F401
    get_alignment_cube,
    get_answers,
    get_attributes,
    get_best_instruction,
    get_bootstrap_intervals,
    get_brain_mesh,
    get_dataset,
    get_encoder,
    get_encoder_table,
    get_instruction_stars,
    get_masks,
    get_model_comparison,
    get_partition_table,
    get_raster,
    get_roi_names,
    get_roi_table,
    get_roi_winners,
    get_subject,
    get_target_frame,
    get_target_scores,
    get_thumbnail,
    get_truth,
    get_vertex_targets,
    render_brain3d,
    render_category_map,
    render_map,
    render_value_map,
    stamp,
)
from pages.ui.maps import (  # noqa: F401
    TOOLS,
    brain_3d,
    map_figure,
    map_tools,
    show_map,
    surface_problem,
    target_inspector,
)
