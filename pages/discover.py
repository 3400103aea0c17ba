"""Discover: search candidate instructions for the one whose response embeddings best predict an
ROI (or a contrast between two ROIs), within a budget of responses; the search runs in the
background (``python -m core discover``) and this page reads its stored result."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.data.rois import GENERAL
from core.models.registry import DEFAULT_MODEL
from core.pipeline import discover as disc
from core.pipeline.jobs import job_status, start_job
from core.viz.maps import BrainMap
from pages import ui

ds = ui.page_header(
    "Discover",
    "Search the prompt pool, generated templates and your own instructions for the one that "
    "best predicts an area. Candidates are compared by cross-validated scores on training "
    "images only (screened on subsets, the survivors fully fitted); the winner and the best of "
    "the paper's 10, chosen by the same rule, are reported once on the test images.",
)
name = ds.name
subject0 = ds.subject_names[0]
rois = [r for r in ui.get_masks(name, subject0) if r != GENERAL]

with st.form("dc_form"):
    c1, c2, c3 = st.columns(3)
    model = c1.text_input("Model", DEFAULT_MODEL, key="dc_model")
    roi = c2.selectbox("ROI", rois, key="dc_roi")
    contrast = c3.selectbox("Contrast: minus this ROI (optional)", ["—", *rois], key="dc_contrast")
    c4, c5, c6 = st.columns(3)
    candidates = c4.selectbox("Candidates", ["pool+generated", "pool", "paper+generated",
                                             "generated"], key="dc_candidates")  # fmt: skip
    budget = c5.number_input("Budget (new responses; 0 = a first round of 100 images)", 0,
                             10_000_000, 30_000, step=1_000, key="dc_budget")  # fmt: skip
    finalists = c6.number_input("Finalists (fully fitted)", 1, 20, 4, key="dc_finalists")
    own = st.text_area("Your own instructions (optional, one per line; 'task<TAB>text' names a "
                       "task group)", key="dc_own")  # fmt: skip
    submitted = st.form_submit_button("Start the search in the background", type="primary")
job = f"discover-{name}"
if submitted:
    spec = candidates + (f"+{disc.save_candidate_file(own)}" if own.strip() else "")
    args = disc.job_args(name, model, roi, None if contrast == "—" else contrast, spec,
                         int(budget) or None, int(finalists))  # fmt: skip
    if job_status(job).running:
        st.warning("A search is already running on this dataset.")
    else:
        start_job(job, args)
        st.session_state[f"_job_{job}"] = "running"
        st.rerun()
status = job_status(job)
if status.argv:
    st.caption("Command: `python -m core " + " ".join(status.argv) + "`")
ui.job_log(job)

# ---------------------------------------------------------------- stored searches
searches = disc.list_searches(name)
if searches.empty:
    st.info("No search has finished on this dataset yet.")
    st.stop()
labels = {row.key: f"{row.objective} · {row.model} · {row.n_candidates} candidates · winner: "
          f"{row.winner}" for row in searches.itertuples()}  # fmt: skip
ui.from_url("dc_search", "search", list(labels))
key = st.selectbox("Stored search", list(labels), format_func=labels.get, key="dc_search")
ui.link(search=key)
result = disc.read_search(name, key)
win, pb, gain = result["leaderboard"][0], result["paper_best"], result["gain"]


def _ci(ci) -> str:
    return "n/a" if ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


st.subheader(f"Objective: {result['objective']['label']} · layer {result['layer']}")
m1, m2, m3, m4 = st.columns(4)
m1.metric("Winner (test)", f"{win['test']:.3f}", help=win["text"])
m2.metric(f"Best paper instruction: {pb['id']}", f"{pb['test']:.3f}", help=pb["text"])
m3.metric("Winner − paper", f"{gain['difference']:+.3f}",
          delta="gain claimed" if gain["claimed"] else "no gain claimed",
          delta_color="normal" if gain["claimed"] else "off")  # fmt: skip
m4.metric("Responses spent", f"{result['spent']['responses']:,}",
          help=f"planned at most {result['plan']['responses']:,}; exhaustive extraction "
          f"{result['plan']['exhaustive_responses']:,}; {result['spent']['seconds']} s")  # fmt: skip
st.markdown(f"**Winner**: {win['text']} ({win['task']}); 95% CI {_ci(win['test_ci'])}. "
            f"**Best paper** {pb['id']}: {pb['text']}; 95% CI {_ci(pb['test_ci'])}. "
            f"**Difference** {gain['difference']:+.3f}, 95% CI {_ci(gain['ci'])} (paired bootstrap "
            "over the test images, subjects averaged); per subject: "
            + ", ".join(f"{s} {v['difference']:+.3f} {_ci(v['ci'])}"
                        for s, v in gain["per_subject"].items()))  # fmt: skip
st.caption(f"A search across **N = {result['n_candidates']}** candidates: {result['selection']}. "
           "Normalized alignment r / √NC on the test images.")  # fmt: skip

st.subheader("Leaderboard")
board = disc.leaderboard_frame(result)
st.dataframe(board.drop(columns=["id"]), hide_index=True, width="stretch")
st.caption("CV: normalised cross-validated correlation on training images (full fit for the "
           "finalists, else the last screening round's subset). Test scores only for finalists.")
ui.downloads(board, f"discover_{key}", "dc_board")

# ---------------------------------------------------------------- maps
st.subheader("Maps: the winner, the best paper instruction and their difference")
subject = st.selectbox("Subject", result["subjects"], key="dc_subject")
maps = disc.read_search_maps(name, key)
wv, pv = maps[f"winner_{subject}"], maps[f"paper_{subject}"]
both = np.concatenate([wv, pv])
lim = (0.0, max(float(np.nanpercentile(both, 99)) if np.isfinite(both).any() else 1.0, 1e-3))
label = "normalized alignment (r / √NC)"
shown = [
    BrainMap.of_values(f"dc|{key}|{subject}|w", wv, label=label, cmap="inferno", limits=lim,
                       title=f"Winner · {subject}", caption=win["text"]),
    BrainMap.of_values(f"dc|{key}|{subject}|p", pv, label=label, cmap="inferno", limits=lim,
                       title=f"{pb['id']} · {subject}", caption=pb["text"]),
    BrainMap.of_values(f"dc|{key}|{subject}|d", wv - pv, label=f"winner − {pb['id']}",
                       symmetric=True, title=f"Winner − {pb['id']} · {subject}",
                       caption="Red: the winner predicts the target better."),
]  # fmt: skip
cols = st.columns(3)
for where, m in zip(cols, shown, strict=True):
    ui.show_map(where, m, name, subject, result["objective"]["roi"], ds.simulated)

st.subheader("Add a finalist to Compare instructions")
finalists_ = board[board["test"].notna()]
rank = st.selectbox("Finalist", finalists_["rank"].tolist(), key="dc_rank",
                    format_func=lambda r: f"{r}. {board.loc[board['rank'] == r, 'text'].iloc[0]}")  # fmt: skip
ui.job_button(f"discover-add-{name}", ["discover", "--dataset", name, "--add", key,
                                       "--rank", str(int(rank))],
              "Add to Compare instructions",
              help="Puts its stored full fits into the results table (same layer and settings "
                   "as the grid), so the Compare instructions page lists it.")  # fmt: skip

# ---------------------------------------------------------------- text vs map similarity
st.subheader("Does the instruction's meaning predict its brain map?")
sim = result.get("text_similarity") or {}
pairs = disc.similarity_frame(result)
if pairs.empty:
    st.info(sim.get("error", "This search has no text-vs-map analysis."))
else:
    st.scatter_chart(pairs, x="text_similarity", y="map_similarity", height=360)
    st.caption(f"Each point is a pair of candidates: the cosine similarity of their texts "
               f"embedded by {result['model']}'s own language model (layer {result['layer']}) "
               "against the correlation of their cross-validated maps over the general mask "
               f"(first screening round, subjects averaged). Pearson r {sim['pearson']:+.3f}, "
               f"Spearman {sim['spearman']:+.3f}, Mantel permutation p {sim['p_mantel']:.3f} "
               f"({sim['n_candidates']} candidates, {sim['n_pairs']} pairs).")  # fmt: skip
