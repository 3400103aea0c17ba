"""Deep links: every page's selections in the URL, read back on first load, and the copy-link button."""

from __future__ import annotations

import streamlit as st

DATASET_KEY = "dataset"


ROI_KEY_SUFFIX = "_roi"

#: Session keys already seeded from the URL (each widget takes the URL's value once per session).
_URL_SEEDED = "_url_seeded"

#: URL parameters the current run wrote (the others are dropped at the end of the run).
_URL_WRITTEN = "_url_written"


def from_url(key: str, param: str, options=None, multi: bool = False, aliases=None) -> None:
    """Seed the widget state ``key`` from the URL's ``?param=`` (once per session and key).

    Call right before the widget is created. Values are matched against ``options`` by their
    text (so ``layer=4`` finds the option ``4``); ``aliases`` maps URL values to options (e.g.
    an instruction id to its label). Unknown values are ignored.
    """
    seeded = st.session_state.setdefault(_URL_SEEDED, set())
    if key in seeded:
        return
    seeded.add(key)
    if param not in st.query_params:
        return
    raw = st.query_params.get_all(param) if multi else [st.query_params.get(param)]
    if multi and len(raw) == 1 and "," in str(raw[0]):
        raw = str(raw[0]).split(",")
    chosen = []
    for value in raw:
        value = (aliases or {}).get(value, value)
        if options is None:
            chosen.append(value)
            continue
        match = next((o for o in options if str(o) == str(value)), None)
        if match is not None:
            chosen.append(match)
    if not chosen:
        return
    st.session_state[key] = chosen if multi else chosen[0]


def default_value(key: str, options, default) -> None:
    """Give the widget ``key`` its ``default`` through the session state when it holds no
    valid option yet (none, or one its options no longer offer). Call right before the widget
    (after :func:`from_url`) and pass the widget no ``index``: a widget with both a default and
    a session-state value makes Streamlit warn."""
    if st.session_state.get(key) not in list(options):
        st.session_state[key] = default


def url_value(param: str, default=None):
    """A URL parameter's value as first opened in this session (``default`` when absent or
    already used)."""
    seeded = st.session_state.setdefault(_URL_SEEDED, set())
    key = f"_url:{param}"
    if key in seeded:
        return default
    seeded.add(key)
    return st.query_params.get(param, default)


def begin_links() -> None:
    """Start a run: parameters not written again by this run are dropped by :func:`end_links`
    (so that one page's selections never leak into another page's URL)."""
    st.session_state[_URL_WRITTEN] = set()


def end_links() -> None:
    written = st.session_state.get(_URL_WRITTEN)
    if written is None:
        return
    kept = {p: st.query_params.get_all(p) for p in st.query_params if p in written}
    # written as a whole once per run: the browser's URL then always matches the page, even
    # after a rerun that the frontend did not see start (a deep link's first load)
    st.query_params.from_dict({p: v if len(v) > 1 else v[0] for p, v in kept.items()})


def link(**params) -> None:
    """Write the page's selections into the URL (``None`` removes a parameter; lists become
    repeated parameters), so that a copied URL reopens the same view."""
    st.session_state.setdefault(_URL_WRITTEN, set()).update(params)
    for param, value in params.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            if param in st.query_params:
                del st.query_params[param]
            continue
        if isinstance(value, (list, tuple)):
            new = [str(v) for v in value]
            if st.query_params.get_all(param) != new:
                st.query_params[param] = new
        elif st.query_params.get(param) != str(value):
            st.query_params[param] = str(value)


def link_url() -> str:
    """The URL of the current view (relative when the app's address is unknown, e.g. in
    tests)."""
    from urllib.parse import urlencode, urlsplit

    query = urlencode([(k, v) for k in st.query_params for v in st.query_params.get_all(k)])
    base = ""
    try:
        url = st.context.url or ""
    except Exception:
        url = ""
    if url:
        parts = urlsplit(url)
        path = st.session_state.get("_page_path", "")
        base = f"{parts.scheme}://{parts.netloc}/{path}"
    return f"{base}?{query}" if query else (base or "?")


def copy_link_button():
    """A "copy link" button (it copies the browser's current URL, which holds every selection);
    returns a placeholder for :func:`show_link`. Its label is plain text: the iframe has only
    the browser's fonts, where an emoji may have no glyph (a box)."""
    st.iframe(_COPY_LINK_HTML, height=44)
    return st.empty()


def show_link(box) -> None:
    """The link to the current view, written into ``box`` once the page has run."""
    try:
        with box.container():
            with st.expander("Link to this view"):
                st.code(link_url(), language=None, wrap_lines=True)
                st.caption("Opening it reproduces the page's selections (dataset, subject, "
                           "model, instructions, layer, ROI, stimulus, map).")  # fmt: skip
    except Exception:  # never let the link box hide the page's own error
        pass


_COPY_LINK_HTML = """
<button id="copy" title="Copy a link that reopens this view with the same selections"
 style="font:14px 'Source Sans Pro',sans-serif;padding:6px 12px;border:1px solid #d6d6d9;
 border-radius:8px;background:white;cursor:pointer;width:100%">Copy link to this view</button>
<script>
const b = document.getElementById('copy');
b.onclick = async () => {
  const url = window.parent.location.href;
  let ok = false;
  try { await navigator.clipboard.writeText(url); ok = true; } catch (e) {
    const t = document.createElement('textarea'); t.value = url; document.body.appendChild(t);
    t.select(); try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    t.remove();
  }
  b.textContent = ok ? 'Link copied' : 'Copy failed: use the link below';
  b.dataset.copied = url;
  setTimeout(() => { b.textContent = 'Copy link to this view'; }, 2500);
};
</script>
"""
