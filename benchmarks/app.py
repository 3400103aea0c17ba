"""Dashboard speed: server-side rerun time on cached data, the first render of every page, live
inference end to end (image -> response -> encoder prediction -> ROI means), the 3D brain view
and the target inspector, on 2 CPU cores.

Usage: ``BRAINPROMPT_HOME=/path/with/demo/and/grid python benchmarks/app.py [--model NAME]
[--repeats 10]``. The home must hold a built demo and a grid with kept encoders (the default home
after ``python -m core demo build && python -m core run``; or a scratch home with a tiny grid).
Targets (issues 6 and 16): cached rerun <= 300 ms, first render of a page <= 2 s, live inference
<= 2 s, 3D view <= 2 s (server side: the run that draws it; the decimated mesh is built once per
surface and kept on disk, reported apart). Issue 23: the 3D view's page <= 1.5 MB, and drawn in
the browser within 3 s of the click.

Times are measured in-process with ``streamlit.testing.v1.AppTest`` (the script's own run time,
what a browser waits for on the server side; no network or browser rendering). Where Debian
chromium is installed (``apt-get install chromium``) the 3D view is also timed in headless
chromium (``tests/app/browser.py``; software WebGL): the page alone (loaded from a file until its
first frame), and in the app (``streamlit run``): from the click on "3D brain" on a rendered page,
and from opening a link with ``?tool=3d``, to the first frame; ``--no-browser`` skips these.

Reference, before issue 23 (nilearn's plotly.js inlined in every view), on this machine: 3.2 MB
per view; the page alone drawn in 2.2-2.7 s; click to canvas 5.9 s, link to canvas 7-10 s.
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
    ap.add_argument("--no-browser", action="store_true", help="skip the chromium timings")
    args = ap.parse_args(argv)

    import torch

    import core  # noqa: F401
    from core.config import home

    torch.set_num_threads(args.threads)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    print(f"home {home()}; torch threads {args.threads}")
    rows = []

    # the server process's first run imports the libraries (scipy, scikit-learn, matplotlib,
    # torch...): paid once per server start, by its first visitor
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    rows.append(("server start: first run, importing the libraries", _timed(at.run), None))
    # first render of Explore: empty streamlit caches (the demo is built, the raster on disk)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    first = _timed(at.run)
    if at.exception:
        print("Explore raised:", at.exception[0].value)
        return 1
    rows.append(("first render of Explore (cold caches)", first, 2.0))
    if args.model:
        at.selectbox(key="ex_model").set_value(args.model).run()
    model = at.selectbox(key="ex_model").value

    # live inference end to end: a fresh image each time (cache miss), model already loaded
    at.button(key="ex_run").click().run()  # warm-up: loads the model
    from core.dashboard import prediction, stored_encoders
    from core.data.registry import open_dataset

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
            rows.append((f"{title}: first visit", cold, 2.0))
        times = [_timed(at.run) for _ in range(args.repeats)]
        if at.exception:
            print(f"{title} raised:", at.exception[0].value)
        rows.append((f"{title}: rerun on cached data (median)", statistics.median(times), 0.3))

    rows += _brain_and_inspector(at, args.repeats)
    if not args.no_browser:
        rows += _brain_in_browser(home())

    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure'.ljust(width)}    value  target")
    for name, value, target in rows:
        unit = "MB" if name.endswith("(MB)") else "s"
        flag = "" if target is None else ("  ok" if value <= target else "  OVER")
        tgt = "" if target is None else f"<= {target:g} {unit}"
        print(f"{name.ljust(width)}  {value:7.3f}  {tgt}{flag}")
    return 0


def _brain_and_inspector(at, repeats: int) -> list[tuple[str, float, float | None]]:
    """The 3D view and the inspector on the Compare-instructions page (the richest maps)."""
    from core.config import subdir
    from core.viz import brain3d

    rows = []
    at.switch_page("pages/instructions.py").run()
    # the decimated mesh: built once per surface, then read from disk
    for path in subdir("flatmaps").glob("mesh3d-*.npz"):
        path.unlink()
    brain3d.load_brain_mesh.cache_clear()
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    at.run()
    t_build = _timed(lambda: at.radio(key="ci_tool").set_value("3D brain").run())
    rows.append(("3D view, mesh built now (once per surface, kept on disk)", t_build, None))
    at.radio(key="ci_tool").set_value("Flat maps only").run()
    brain3d.load_brain_mesh.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()
    at.run()
    t_3d = _timed(lambda: at.radio(key="ci_tool").set_value("3D brain").run())
    rows.append(("3D view: first render (mesh on disk, caches cold)", t_3d, 2.0))
    html = _brain_page(at)
    rows.append(("3D view: page sent per view (MB)", len(html.encode()) / 1e6, 1.5))
    _PAGES["first"] = html
    maps = at.selectbox(key="ci_map").options
    t_other = _timed(lambda: at.selectbox(key="ci_map").set_value(len(maps) - 1).run())
    rows.append(("3D view: another map", t_other, 2.0))
    other = _brain_page(at)
    rows.append(("3D view: page of another map (MB)", len(other.encode()) / 1e6, 1.5))
    times = [_timed(at.run) for _ in range(repeats)]
    rows.append(("3D view: rerun on cached data (median)", statistics.median(times), 0.3))
    t_insp = _timed(lambda: at.radio(key="ci_tool").set_value("Inspect targets").run())
    rows.append(("inspector: first open (every instruction x layer loaded)", t_insp, 2.0))
    t_target = _timed(lambda: at.number_input(key="ci_target").set_value(123).run())
    rows.append(("inspector: another target", t_target, 0.3))
    times = [_timed(at.run) for _ in range(repeats)]
    rows.append(("inspector: rerun on cached data (median)", statistics.median(times), 0.3))
    t_roi = _timed(lambda: at.radio(key="ci_inspect").set_value("an ROI").run())
    rows.append(("inspector: an ROI's distributions (first time)", t_roi, 2.0))
    times = [_timed(at.run) for _ in range(repeats)]
    rows.append(("inspector: rerun with an ROI's distributions (median)",
                 statistics.median(times), 0.3))  # fmt: skip
    if at.exception:
        print("instructions raised:", at.exception[0].value)
    return rows


#: The 3D view's pages the AppTest run produced (timed in chromium afterwards).
_PAGES: dict[str, str] = {}


def _brain_page(at) -> str:
    """The HTML of the 3D view the app shows."""
    return next(str(e.proto.srcdoc) for e in at.get("iframe")
                if 'data-testid="brain3d"' in str(e.proto.srcdoc))  # fmt: skip


#: JS: has the 3D view (in the page, or in an iframe of it) drawn its first frame?
_BRAIN_READY = """
(() => {
  const own = document.getElementById('brain');
  if (own && own.dataset.ready) return true;
  for (const f of document.querySelectorAll('iframe')) {
    try { const b = f.contentDocument.getElementById('brain'); if (b && b.dataset.ready) return true; }
    catch (e) {}
  }
  return false;
})()
"""


def _wait(browser, js: str, t0: float, timeout: float = 60.0) -> float:
    """Seconds from ``t0`` until ``js`` is truthy (polled every 20 ms)."""
    deadline = time.time() + timeout
    while not browser.eval(js):
        if time.time() > deadline:
            raise TimeoutError(js)
        time.sleep(0.02)
    return time.time() - t0


def _brain_in_browser(home: Path) -> list[tuple[str, float, float | None]]:
    """The 3D view in headless chromium: the page alone, then in the app from a click and from a
    link (first frame drawn). Nothing when chromium is not installed."""
    sys.path.insert(0, str(REPO / "tests" / "app"))
    from browser import AppServer, Chromium, chromium_path

    if chromium_path() is None:
        print("chromium is not installed: no browser-side timings (apt-get install chromium)")
        return []
    import tempfile

    rows = []
    with Chromium(width=1400, height=1000) as browser:
        if "first" in _PAGES:
            page = Path(tempfile.mkdtemp(prefix="bp-brain3d-")) / "brain3d.html"
            page.write_text(_PAGES["first"], encoding="utf-8")
            times = []
            for _ in range(3):
                browser.open("about:blank")
                time.sleep(0.3)
                t0 = time.time()
                browser.open(page.as_uri())
                times.append(_wait(browser, _BRAIN_READY, t0))
            rows.append(("3D view in chromium: the page alone, load to canvas (median)",
                         statistics.median(times), None))  # fmt: skip
        with AppServer(home) as server:
            click_js = ("[...document.querySelectorAll('[data-testid=\"stRadio\"] label')]"
                        ".find(e => e.innerText.trim() === '3D brain').click()")  # fmt: skip
            flat_js = click_js.replace("3D brain", "Flat maps only")
            clicks, links = [], []
            for _ in range(3):
                browser.open(f"{server.url}/instructions")
                # the page is idle between its runs too: wait for its last part, then for idle
                browser.wait_for("!!" + click_js.replace(".click()", ""), timeout=120)
                browser.wait_idle(timeout=120)
                t0 = time.time()
                browser.eval(click_js)
                clicks.append(_wait(browser, _BRAIN_READY, t0, timeout=120))
                browser.eval(flat_js)
                time.sleep(1.0)
                browser.wait_idle(timeout=60)
                browser.open("about:blank")
                time.sleep(0.3)
                t0 = time.time()
                browser.open(f"{server.url}/instructions?tool=3d")
                links.append(_wait(browser, _BRAIN_READY, t0, timeout=120))
            rows.append(("3D view in the app: click to canvas (first)", clicks[0], 3.0))
            rows.append(("3D view in the app: click to canvas (median of 3)",
                         statistics.median(clicks), 3.0))  # fmt: skip
            rows.append(("3D view in the app: link to canvas (median of 3)",
                         statistics.median(links), None))  # fmt: skip
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
