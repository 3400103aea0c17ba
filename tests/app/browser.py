"""A real browser for the app: ``streamlit run`` plus headless Debian chromium driven over the
DevTools protocol (websockets, already a streamlit dependency). No selenium, no downloads.

Usage::

    with AppServer(home) as server, Chromium() as browser:
        browser.open(server.url + "/instructions")
        browser.wait_idle()
        browser.screenshot("test-artifacts/instructions.png")

Also runnable by hand to look at the pages: ``python tests/app/browser.py HOME OUTDIR``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: JS: is the page done rendering? (app mounted, no skeleton, status widget not running, no
#: spinner)
IDLE_JS = """
(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return 'no app';
  if (document.querySelector('[data-testid="stSkeleton"]')) return 'skeleton';
  if (document.querySelector('[data-testid="stAppSkeleton"]')) return 'skeleton';
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  if (status && /running|connecting/i.test(status.innerText)) return 'running';
  if (document.querySelector('[data-testid="stSpinner"]')) return 'spinner';
  if (!document.querySelector('[data-testid="stMainBlockContainer"]')) return 'no main';
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  if (charts.some(c => !c.querySelector('canvas, svg'))) return 'charts';
  const imgs = [...document.querySelectorAll('[data-testid="stImage"] img')];
  if (imgs.some(i => !i.complete)) return 'images';
  return 'idle';
})()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class AppServer:
    """``streamlit run app.py`` on a free localhost port with a given BrainPrompt home."""

    def __init__(self, home: Path, timeout: float = 60.0) -> None:
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkdtemp(prefix="bp-streamlit-")) / "server.log"

    def __enter__(self) -> AppServer:
        env = {**os.environ, "BRAINPROMPT_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        for var in ("XDG_CONFIG_HOME", "HF_HOME", "NILEARN_DATA", "MPLCONFIGDIR"):
            env.pop(var, None)  # core points them inside the home
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
            "--server.headless", "true", "--server.port", str(self.port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"streamlit did not become healthy:\n{self.log()}")

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class Chromium:
    """Headless chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 30.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = Path(tempfile.mkdtemp(prefix="bp-chromium-"))
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self._id = 0
        #: protocol events received so far (console messages, exceptions, downloads, ...)
        self.events: list[dict] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0",
            "--remote-allow-origins=*", f"--user-data-dir={self.profile}",
            f"--window-size={self.width},{self.height}", "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader", "about:blank",
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.time() + self.timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = json.loads(r.read())
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium has no page target")
            time.sleep(0.1)
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.set_viewport(self.width, self.height)
        return self

    def __exit__(self, *exc) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol
    def send(self, method: str, **params):
        self._id += 1
        msg_id = self._id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.time() + self.timeout
        while True:
            raw = self.ws.recv(timeout=max(deadline - time.time(), 0.1))
            msg = json.loads(raw)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def eval(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                        awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def console_errors(self, since: int = 0) -> list[str]:
        """Console errors and uncaught exceptions (of the page and its same-origin frames) among
        the events received after event number ``since``."""
        out = []
        for ev in self.events[since:]:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(str(details.get("exception", {}).get("description") or details))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in params.get("args", [])))  # fmt: skip
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(str(params["entry"].get("text")))
        return out

    # -- actions
    def set_viewport(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_idle(self, timeout: float = 60.0, settle: float = 1.0) -> str:
        """Wait until the app has rendered and stayed idle for ``settle`` seconds."""
        deadline = time.time() + timeout
        idle_since = None
        state = ""
        while time.time() < deadline:
            state = self.eval(IDLE_JS)
            if state == "idle":
                idle_since = idle_since or time.time()
                if time.time() - idle_since >= settle:
                    return state
            else:
                idle_since = None
            time.sleep(0.2)
        raise TimeoutError(f"page not idle after {timeout} s (last state: {state})")

    def wait_for(self, js: str, timeout: float = 60.0) -> object:
        """Wait until the JS expression is truthy; return its value."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.eval(js)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for: {js}")

    def count(self, selector: str) -> int:
        return int(self.eval(f"document.querySelectorAll({json.dumps(selector)}).length"))

    def text(self) -> str:
        return self.eval("document.querySelector('[data-testid=\"stApp\"]').innerText") or ""

    def click_button(self, label: str) -> bool:
        js = f"""
        (() => {{
          const b = [...document.querySelectorAll('button')]
            .find(e => e.innerText.trim() === {json.dumps(label)} && !e.disabled);
          if (!b) return false;
          b.scrollIntoView(); b.click(); return true;
        }})()"""
        return bool(self.eval(js))

    def rect(self, js_element: str) -> dict | None:
        """The viewport rectangle (x, y, width, height) of the element a JS expression returns,
        scrolled into view first."""
        js = f"""
        (() => {{
          const e = {js_element};
          if (!e) return null;
          e.scrollIntoView({{block: 'center'}});
          const r = e.getBoundingClientRect();
          return {{x: r.x, y: r.y, width: r.width, height: r.height}};
        }})()"""
        return self.eval(js)

    def click_at(self, x: float, y: float) -> None:
        """A real mouse click (move, press, release) at viewport coordinates."""
        for kind, extra in (("mouseMoved", {}), ("mousePressed", {"button": "left", "clickCount": 1}),
                            ("mouseReleased", {"button": "left", "clickCount": 1})):  # fmt: skip
            self.send("Input.dispatchMouseEvent", type=kind, x=float(x), y=float(y), **extra)
            time.sleep(0.05)

    def capture(self, rect: dict):
        """A PIL image of a viewport rectangle (at device scale 1)."""
        import io

        from PIL import Image

        clip = {"x": rect["x"], "y": rect["y"], "width": rect["width"],
                "height": rect["height"], "scale": 1}  # fmt: skip
        data = self.send("Page.captureScreenshot", format="png", clip=clip)["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def allow_downloads(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(folder))

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scrollable main area when ``full_page``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            # lazy images have no height until loaded: grow the viewport until the page's
            # height stops changing
            height = self.height
            for _ in range(5):
                h = self.eval(
                    "Math.max(...[...document.querySelectorAll("
                    "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"], "
                    "[data-testid=\"stMainBlockContainer\"]')]"
                    ".map(e => e.scrollHeight), document.body.scrollHeight)"
                )
                new = min(int(h or self.height) + 40, 8000)
                if new <= height:
                    break
                height = new
                self.set_viewport(self.width, height)
                time.sleep(0.4)
                self.wait_idle(timeout=30, settle=0.5)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        if full_page:
            self.set_viewport(self.width, self.height)
        return path


#: (url path, title, CSS selectors that must be present)
PAGES = [
    ("", "Explore", ['[data-testid="stImage"] img']),
    ("instructions", "Compare instructions", ['[data-testid="stVegaLiteChart"]',
                                              '[data-testid="stImage"] img']),
    ("models", "Models and baselines", ['[data-testid="stVegaLiteChart"]',
                                        '[data-testid="stImage"] img']),
    ("partitions", "Variance partitioning", ['[data-testid="stVegaLiteChart"]',
                                             '[data-testid="stImage"] img']),
    ("pipeline", "Pipeline", ['[data-testid="stDataFrame"]']),
]  # fmt: skip


#: JS: {label: shown value} of every selectbox, and the checked option of every radio group
SELECTIONS_JS = """
(() => {
  const out = {};
  for (const e of document.querySelectorAll('[data-testid="stSelectbox"]')) {
    const label = e.querySelector('label'), input = e.querySelector('input');
    if (label && input) out[label.innerText.trim()] = input.value;
  }
  for (const e of document.querySelectorAll('[data-testid="stRadio"]')) {
    const label = e.querySelector('label'), checked = e.querySelector('input:checked');
    if (label && checked) out[label.innerText.trim()] = checked.closest('label').innerText.trim();
  }
  return out;
})()
"""

#: JS: number of canvases inside the 3D view's iframe (0 until the viewer has drawn)
BRAIN_CANVAS_JS = """
(() => {
  for (const f of document.querySelectorAll('iframe')) {
    try {
      const d = f.contentDocument;
      if (d && d.querySelector('[data-testid="brain3d"] canvas') && d.getElementById('brain').dataset.ready)
        return d.querySelectorAll('[data-testid="brain3d"] canvas').length;
    } catch (e) {}
  }
  return 0;
})()
"""


#: JS: click the copy-link button (in its iframe); COPIED_JS: the URL it copied
COPY_LINK_JS = """
(() => {
  for (const f of document.querySelectorAll('iframe')) {
    try { const b = f.contentDocument.getElementById('copy'); if (b) { b.click(); return true; } }
    catch (e) {}
  }
  return false;
})()
"""
COPIED_JS = """
(() => {
  for (const f of document.querySelectorAll('iframe')) {
    try { const b = f.contentDocument.getElementById('copy'); if (b && b.dataset.copied) return b.dataset.copied; }
    catch (e) {}
  }
  return null;
})()
"""


#: JS: Compare instructions' bars: the ROIs on the x axis and the chosen-instruction markers
#: (triangles; their SVG aria labels name the ROI and the chosen instruction)
BEST_MARKS_JS = """
(() => {
  const root = document.querySelector('.st-key-ci_bars [data-testid="stVegaLiteChart"]');
  if (!root || !root.querySelector('svg.marks')) return null;
  const xaxis = [...root.querySelectorAll('g.role-axis')]
    .find(a => /^X-axis/.test(a.getAttribute('aria-label') || ''));
  const rois = xaxis ? [...xaxis.querySelectorAll('g.role-axis-label text')].map(t => t.textContent) : [];
  const marked = [...root.querySelectorAll('g.mark-symbol.role-mark path')]
    .map(p => p.getAttribute('aria-label') || '')
    .filter(l => l.includes('chosen instruction: '))
    .map(l => [l.match(/roi: ([^;]+)/)[1], l.match(/chosen instruction: ([^;]+)/)[1]]);
  return {rois, marked};
})()
"""

#: JS: every instruction x ROI heatmap (y axis titled "instruction"): how many rows its scale
#: has (from the axis' aria label) and the row labels drawn
HEATMAP_ROWS_JS = """
(() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(root => {
  const yaxis = [...root.querySelectorAll('g.role-axis')]
    .find(a => /^Y-axis titled 'instruction' for a discrete scale with (\\d+) value/.test(a.getAttribute('aria-label') || ''));
  if (!yaxis) return null;
  const n = +yaxis.getAttribute('aria-label').match(/with (\\d+) value/)[1];
  return {rows: n, labels: [...yaxis.querySelectorAll('g.role-axis-label text')].map(t => t.textContent)};
}).filter(x => x))()
"""

#: JS: the target inspector's drawn scatter and its details card (viewport rectangles)
INSPECTOR_RECTS_JS = """
(() => {
  const r = e => { if (!e) return null; const b = e.getBoundingClientRect();
                   return {left: b.left, top: b.top, right: b.right, bottom: b.bottom}; };
  return {
    scatter: r(document.querySelector('.st-key-ci_targets_click [data-testid="stVegaLiteChart"] :is(svg.marks, canvas)')),
    card: r(document.querySelector('.st-key-ci_inspector_card')),
  };
})()
"""


def overlap(a: dict | None, b: dict | None) -> bool:
    """Whether two rectangles (left, top, right, bottom) overlap (None: not drawn)."""
    if a is None or b is None:
        return True
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and (
        b["top"] < a["bottom"])


def _page_errors(browser: Chromium, since: int) -> list[str]:
    """Console errors since event ``since``, without the 404s of Streamlit's own probes of
    ``<page>/_stcore/health`` and ``host-config`` (the frontend asks them relative to a page's
    URL when that URL is opened directly; they are retried at the root and answered)."""
    noise = [ev for ev in browser.events[since:]
             if ev.get("method") == "Log.entryAdded"
             and "/_stcore/" in str(ev["params"]["entry"].get("url", ""))]  # fmt: skip
    errors = browser.console_errors(since)
    for ev in noise:
        text = ev["params"]["entry"].get("text")
        if text in errors:
            errors.remove(text)
    return errors


def _open(browser: Chromium, url: str, title: str) -> None:
    browser.open(url)
    browser.wait_for(
        f"document.querySelector('h1') && document.querySelector('h1').innerText"
        f".includes({json.dumps(title)})",
        timeout=90,
    )
    browser.wait_idle(timeout=90)


def tool_checks(server: AppServer, browser: Chromium, outdir: Path) -> dict[str, dict]:
    """The dashboard's demo features in the real browser: a deep link reopens its selections and
    the 3D view (a WebGL canvas, no console error); clicking a bar highlights its ROI; clicking
    the interactive flat map opens the target inspector; the figures export as a ZIP."""
    report: dict[str, dict] = {}
    # deep link -> the same selections, and the 3D view
    since = len(browser.events)
    t0 = time.time()
    _open(browser, f"{server.url}/instructions?a=IC&b=IU1&roi=V1&tool=3d&map=1", "Compare")
    t_page = time.time() - t0
    canvases = browser.wait_for(BRAIN_CANVAS_JS, timeout=60)
    report["deep_link"] = {
        "selections": browser.eval(SELECTIONS_JS),
        "url": browser.eval("location.href"),
        "canvases": canvases,
        "seconds_to_3d": round(time.time() - t0, 2),
        "seconds_page": round(t_page, 2),
        "errors": _page_errors(browser, since),
    }
    browser.screenshot(outdir / "deep_link_3d.png")
    # the sidebar's copy-link button copies the current URL
    browser.eval(COPY_LINK_JS)
    report["copy_link"] = {
        "copied": browser.wait_for(COPIED_JS, timeout=10),
        "url": browser.eval("location.href"),
    }

    # click a bar of the Compare-instructions chart -> that ROI is highlighted
    _open(browser, f"{server.url}/instructions", "Compare")
    bars_js = ("document.querySelector('.st-key-ci_bars [data-testid=\\'stVegaLiteChart\\'] "
               ":is(svg.marks, canvas)')")
    browser.wait_for(f"!!{bars_js}", timeout=60)
    time.sleep(1.0)
    # the best instruction of each ROI marked once; every heatmap row labelled
    report["best_marks"] = browser.wait_for(BEST_MARKS_JS, timeout=30)
    report["heatmaps"] = browser.eval(HEATMAP_ROWS_JS)
    rect = browser.rect(bars_js)
    img = browser.capture(rect)
    bar = _find_bar(img)
    picked = None
    if bar is not None:
        browser.click_at(rect["x"] + bar[0], rect["y"] + bar[1])
        try:
            picked = browser.wait_for(
                "(() => { const v = document.querySelector('.st-key-ci_roi input');"
                " return v && v.value !== '(none)' ? v.value : null; })()", timeout=30)
        except TimeoutError:
            picked = None
        browser.wait_idle(timeout=60)
    report["bar_click"] = {"bar_found": bar is not None, "highlighted": picked,
                           "url": browser.eval("location.href")}  # fmt: skip

    # the interactive flat map: click a target -> the inspector
    since = len(browser.events)
    _open(browser, f"{server.url}/instructions?tool=inspect", "Compare")
    scatter_js = ("document.querySelector('.st-key-ci_targets_click "
                  "[data-testid=\\'stVegaLiteChart\\'] :is(svg.marks, canvas)')")
    browser.wait_for(f"!!{scatter_js}", timeout=60)
    time.sleep(1.0)
    first = browser.eval("(document.querySelector('.st-key-ci_target input') || {}).value")
    rect = browser.rect(scatter_js)
    browser.click_at(rect["x"] + rect["width"] * 0.3, rect["y"] + rect["height"] * 0.5)
    try:
        target = browser.wait_for(
            "(() => { const v = document.querySelector('.st-key-ci_target input');"
            f" return v && v.value !== {json.dumps(first)} ? v.value : null; }})()", timeout=30)
    except TimeoutError:
        target = None
    browser.wait_idle(timeout=60)
    text = browser.text()
    report["inspector"] = {
        "target": target, "first": first,
        "card": f"Target {target}" in text if target else False,
        "noise_ceiling": "Noise ceiling" in text, "truth": "Planted ground truth" in text,
        "errors": _page_errors(browser, since),
    }
    browser.screenshot(outdir / "inspector.png")

    # the 3D view on a warm page: from the click on "3D brain" to plotly's canvas
    since = len(browser.events)
    t0 = time.time()
    browser.eval("[...document.querySelectorAll('[data-testid=\"stRadio\"] label')]"
                 ".find(e => e.innerText.trim() === '3D brain').click()")
    canvases = browser.wait_for(BRAIN_CANVAS_JS, timeout=60)
    report["brain3d_warm"] = {"canvases": canvases, "seconds": round(time.time() - t0, 2),
                              "errors": _page_errors(browser, since)}  # fmt: skip

    # figures for slides: the ZIP
    downloads = Path(tempfile.mkdtemp(prefix="bp-downloads-"))
    browser.allow_downloads(downloads)
    browser.eval("[...document.querySelectorAll('summary, [data-testid=\"stExpander\"] details > "
                 "summary')].find(e => e.innerText.includes('Figures for slides')).click()")
    time.sleep(0.5)
    clicked = browser.click_button("⬇ All figures (ZIP with captions)")
    zip_path = None
    deadline = time.time() + 90
    while clicked and time.time() < deadline:
        done = [f for f in downloads.glob("*.zip")]
        if done:
            zip_path = done[0]
            break
        time.sleep(0.3)
    files = []
    if zip_path is not None:
        import zipfile

        time.sleep(0.5)
        with zipfile.ZipFile(zip_path) as zf:
            files = zf.namelist()
            captions = zf.read("captions.md").decode() if "captions.md" in files else ""
        report["export"] = {"files": files, "captions": captions}
    else:
        report["export"] = {"files": [], "captions": "", "clicked": clicked}
    shutil.rmtree(downloads, ignore_errors=True)

    # the inspector laid out at 1024 and 1600 px: its scatter and its card do not overlap
    layout = {}
    for width in (1024, 1600):
        browser.width = width
        browser.set_viewport(width, browser.height)
        _open(browser, f"{server.url}/instructions?tool=inspect", "Compare")
        browser.wait_for(f"!!{scatter_js}", timeout=60)
        time.sleep(1.0)
        layout[width] = browser.eval(INSPECTOR_RECTS_JS)
        browser.eval("document.querySelector('.st-key-ci_inspector').scrollIntoView()")
        time.sleep(0.3)
        browser.screenshot(outdir / f"inspector_{width}.png", full_page=False)
    browser.width = 1400
    browser.set_viewport(1400, browser.height)
    report["inspector_layout"] = layout

    # a layer=1 link on Explore shows layer 1
    _open(browser, f"{server.url}/?model=tiny-llava&instruction=IC&layer=1", "Explore")
    report["layer_link"] = {"selections": browser.eval(SELECTIONS_JS),
                            "url": browser.eval("location.href")}  # fmt: skip
    return report


def _find_bar(img) -> tuple[int, int] | None:
    """(x, y) of a pixel of the chart's most frequent saturated colour (its first bars), None
    if there is none."""
    import numpy as np

    arr = np.asarray(img).astype(int)
    sat = arr.max(axis=2) - arr.min(axis=2) > 60
    if sat.sum() < 20:
        return None
    codes = (arr[..., 0] // 8) * 1024 + (arr[..., 1] // 8) * 32 + arr[..., 2] // 8
    values, counts = np.unique(codes[sat], return_counts=True)
    ys, xs = np.nonzero(sat & (codes == values[np.argmax(counts)]))
    k = np.lexsort((ys, xs))[ys.size // 2]
    return int(xs[k]), int(ys[k])


def tour(home: Path, outdir: Path, run_explore: bool = True,
         tools: bool = False) -> dict[str, dict]:  # fmt: skip
    """Open every page, wait until rendered, check key elements, save screenshots (and, with
    ``tools``, run :func:`tool_checks`).

    Returns, per page, the found element counts and the screenshot path.
    """
    report: dict[str, dict] = {}
    with AppServer(home) as server, Chromium() as browser:
        for path, title, selectors in PAGES:
            t0 = time.time()
            browser.open(f"{server.url}/{path}")
            browser.wait_for(
                f"document.querySelector('h1') && document.querySelector('h1').innerText"
                f".includes({json.dumps(title)})",
                timeout=90,
            )
            browser.wait_idle(timeout=90)
            for selector in selectors:  # a long page may look idle between its parts
                try:
                    browser.wait_for(f"document.querySelectorAll({json.dumps(selector)})"
                                     ".length > 0", timeout=60)  # fmt: skip
                except TimeoutError:
                    pass  # counted as missing below
            entry = {
                "seconds": round(time.time() - t0, 2),
                "counts": {s: browser.count(s) for s in selectors},
                "badge": "SIMULATED data" in browser.text(),
                "exceptions": browser.count('[data-testid="stException"]'),
            }
            if path == "" and run_explore:
                deadline = time.time() + 30  # the button is disabled until the image is shown
                while not browser.click_button("Run") and time.time() < deadline:
                    time.sleep(0.5)
                browser.wait_for(
                    "document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]').length > 0",
                    timeout=90,
                )
                browser.wait_idle(timeout=90)
                entry["after_run"] = {
                    "charts": browser.count('[data-testid="stVegaLiteChart"]'),
                    "images": browser.count('[data-testid="stImage"] img'),
                    "metrics": browser.count('[data-testid="stMetric"]'),
                    "response": "Response" in browser.text(),
                }
            shot = browser.screenshot(outdir / f"{(path or 'explore')}.png")
            entry["screenshot"] = str(shot)
            report[path or "explore"] = entry
        if tools:
            report["_tools"] = tool_checks(server, browser, outdir)
        report["_server_alive"] = {"alive": server.alive()}
    return report


if __name__ == "__main__":
    out = tour(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps(out, indent=1))
