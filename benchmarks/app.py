"""Dashboard speed: server-side rerun time on cached data, first render of Explore, and live
inference end to end (image -> response -> encoder prediction -> ROI means), on 2 CPU cores.

Usage: ``BRAINPROMPT_HOME=/path/with/demo/and/grid python benchmarks/app.py [--model NAME]
[--repeats 10]``. The home must hold a built demo and a grid with kept encoders (the default home
after ``python -m core demo build && python -m core run``; or a scratch home with a tiny grid).
Targets (issue 6): rerun <= 300 ms, first Explore render <= 5 s, live inference <= 2 s.

Times are measured in-process with ``streamlit.testing.v1.AppTest`` (the script's own run time,
what a browser waits for on the server side; no network or browser rendering).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PAGES = [
    ("Explore", "pages/explore.py"),
    ("Compare instructions", "pages/instructions.py"),
    ("Models and baselines", "pages/models.py"),
    ("Variance partitioning", "pages/partitions.py"),
    ("Pipeline", "pages/pipeline.py"),
]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: the first model Explore offers")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    import core  # noqa: F401
    from core.config import home

    torch.set_num_threads(args.threads)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    print(f"home {home()}; torch threads {args.threads}")
    rows = []

    # first render of Explore: empty streamlit caches (the demo is built, the raster on disk)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    first = _timed(at.run)
    if at.exception:
        print("Explore raised:", at.exception[0].value)
        return 1
    rows.append(("first render of Explore (cold caches)", first, 5.0))
    if args.model:
        at.selectbox(key="ex_model").set_value(args.model).run()
    model = at.selectbox(key="ex_model").value

    # live inference end to end: a fresh image each time (cache miss), model already loaded
    at.button(key="ex_run").click().run()  # warm-up: loads the model
    from core.data.registry import open_dataset
    from core.pipeline import prediction, stored_encoders

    ds = open_dataset("demo")
    encoders = stored_encoders.encoder_table("demo")
    row = stored_encoders.find_encoder(
        encoders, ds.subject_names[0], model, "IC"
    ) or stored_encoders.find_encoder(encoders, ds.subject_names[0], model, "image")
    if row is None:
        print(f"no encoder for {model}; run the grid first")
        return 1
    from core.encoding.store import load_encoder

    enc = load_encoder(row["encoder_key"])
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng()  # unseeded: never-seen pixels, so every call misses the cache
    live = []
    for k in range(args.repeats):
        arr = np.asarray(ds.stimuli.load_image(int(ds.stimuli.ids[k]))).copy()
        arr[:2] = rng.integers(0, 256, arr[:2].shape, dtype=np.uint8)
        img = Image.fromarray(arr)
        t = _timed(
            lambda img=img: prediction.explore_prediction(
                ds, ds.subject_names[0], row, img, "IC", encoder=enc
            )
        )
        live.append(t)
    rows.append((f"live inference + prediction ({model}, uncached)", statistics.median(live), 2.0))
    cached = [
        _timed(lambda: prediction.explore_prediction(
            ds, ds.subject_names[0], row, ds.stimuli.load_image(0), "IC", image_id="demo:0",
            stimulus_id=0, encoder=enc))
        for _ in range(args.repeats)
    ]  # fmt: skip
    rows.append(("cached inference + prediction", statistics.median(cached), None))

    # reruns on cached data, per page (Explore with a result shown)
    at.button(key="ex_run").click().run()
    for title, path in PAGES:
        if path != PAGES[0][1]:
            at.switch_page(path)
            cold = _timed(at.run)
            rows.append((f"{title}: first visit", cold, None))
        times = [_timed(at.run) for _ in range(args.repeats)]
        if at.exception:
            print(f"{title} raised:", at.exception[0].value)
        rows.append((f"{title}: rerun on cached data (median)", statistics.median(times), 0.3))

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)}  seconds  target")
    for name, value, target in rows:
        flag = "" if target is None else ("  ok" if value <= target else "  OVER")
        tgt = "" if target is None else f"<= {target:g}"
        print(f"{name.ljust(width)}  {value:7.3f}  {tgt}{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
