"""The semsim app's Streamlit helpers: the only code that draws, caches in Streamlit or keeps session state.

Pages (app.py, app_pages/) call these and semsim_app; this package calls semsim_app and semsim, never the
other way round (tests/test_app_layers.py):

- widgets     page setup (title, layout, runtime) and navigation, pickers, uploads, error boxes
- state       choices shared across pages in st.session_state
- resources   cached models, classifiers, indexes, embeddings and measurements (one load per server process)
- render      result tables, heatmaps, model cards, metrics tables, PCA maps, training charts
- panels      live panels (st.fragment) for index builds and training runs
- request_form  form widgets made from a training request dataclass (semsim.training.spec)
- runtime     Streamlit behaviours that hurt a Keras app, switched off
- text        user text made safe for Markdown and Plotly

Importing the package itself is cheap: submodules load TensorFlow only when a model is needed.
"""
