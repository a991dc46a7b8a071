"""Streamlit helpers of the semsim app: settings, caching, session state, widgets, rendering, jobs.

Pages import from here; this package imports semsim and index, never the other way round.
Importing the package itself is cheap: submodules load TensorFlow only when a model is needed.
"""
