"""The semsim app's logic, without Streamlit: what the pages work on, as plain data and files.

Layers flow one way: app.py and app_pages/ (thin Streamlit pages) -> semsim_ui (the only code that draws)
-> semsim_app (this package) -> semsim (the ML library) -> index. Nothing here imports Streamlit or
semsim_ui (tests/test_app_layers.py checks both), so each module can be used and tested on its own:

- settings       where the app keeps things (workspace folders), environment overrides, limits, name checks
- catalog        what exists on disk: bundled and tuned models, classifiers, indexes (reads JSON only)
- corpora        corpora to index (bundled or uploaded) and the Home page's default index
- index_builds   index builds in background threads, shared by every session of the server
- run_request    a training request: its data loaded and checked, and the CLI arguments that run it
- run_store      training runs as background processes in run folders: start, list, status, cancel
- run_progress   a run's progress log read into numbers and series
- comparisons    base vs tuned as data frames: rank changes, metric deltas, the Similarity page's texts
- measurements   the Evaluate page's per-item scores of one model on held-out samples, rows with intervals
- reports        the Evaluate page's HTML comparison report (semsim.report), from what the pages measured
- demo           the Home page's first-launch demo: plan, time estimate, state (training, indexing, ready)
- sampling       seeded row samples shared by the requests and the measurements
- downloads      model folders zipped for download

Importing the package is cheap: modules load TensorFlow, Keras or FAISS only inside the functions that
need a model or an index.
"""
