"""Home: what BrainPrompt is, and the state of the embedded demo world."""

from __future__ import annotations

import time

import streamlit as st

from core.data.dataset import DatasetError
from core.data.demo.store import demo_info, open_demo
from core.pipeline.jobs import job_status, start_job
from core.storage import ArtifactError

st.title("BrainPrompt")
st.caption(
    "How do instruction-prompted multimodal LLMs line up with the human visual brain? "
    "Pick an image, an instruction and a model; see the response, the brain responses its "
    "embedding predicts, and per-ROI alignment."
)

try:
    info = demo_info()
except (DatasetError, ArtifactError):
    info = None

if info is None:
    status = job_status("demo-build")
    if not status.running:
        status = start_job("demo-build", ["demo", "ensure", "--quiet"])
    st.info("Building the simulated demo world for the first time (about a minute)…")
    st.code(status.log_tail(2000) or "starting…")
    time.sleep(2)
    st.rerun()

st.warning("**Simulated data**: " + info["description"], icon="🧪")
ds = open_demo()
cols = st.columns(4)
cols[0].metric("Stimuli", info["n_images"])
cols[1].metric("Train / shared test", f"{info['n_train']} / {info['n_test']}")
cols[2].metric("Subjects", len(info["subjects"]))
cols[3].metric(
    "Median noise ceiling",
    f"{sum(s['median_nc'] for s in info['subjects_summary'].values()) / len(info['subjects']):.0f}%",
)
st.subheader("A few stimuli")
gallery = st.columns(6)
attrs = ds.stimuli.attributes()
for col, sid in zip(gallery, attrs.index[:6], strict=False):
    col.image(ds.stimuli.load_image(int(sid)), caption=f"#{sid}: {attrs.loc[sid, 'environment']}")
