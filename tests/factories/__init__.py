"""Builders of small inputs in the real formats, one module per subject (no network, tiny files).

- :mod:`~tests.factories.config`: the one configuration builder, :func:`study_config`;
- :mod:`~tests.factories.cmip6`: ESGF-style CMIP6 files and CDS-style ERA5-Land files;
- :mod:`~tests.factories.ynet`: prepared stores for training and prediction;
- :mod:`~tests.factories.evaluation`: prepared stores and products for the evaluation;
- :mod:`~tests.factories.analysis`: products and truth files for the analysis;
- :mod:`~tests.factories.dashboard`: complete work directories for the dashboard.

Tests reach them as fixtures from ``tests/conftest.py`` or import them as
``tests.factories.<module>`` (``tests`` is a package).
"""
