"""What only the dashboard uses, without streamlit: the gallery and uploads, views of stored
results, live predictions, the background jobs the pages start, the home's status and the stored
encoders to predict with. The pages (``pages/``) are layout only; they call these."""
