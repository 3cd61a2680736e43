"""Evaluation of the merged product against the reference and honest baselines.

Modules: :mod:`~smcore.evaluation.metrics` (scores), :mod:`~smcore.evaluation.baselines`
(resampling, climatology, ridge, QDM primitives), :mod:`~smcore.evaluation.data` (months,
pixels, reading), :mod:`~smcore.evaluation.fitting` (fit and predict the baseline products),
:mod:`~smcore.evaluation.regions` (climate regions), :mod:`~smcore.evaluation.taylor`
(Taylor statistics), :mod:`~smcore.evaluation.audit` (leakage check of the prepared
statistics), :mod:`~smcore.evaluation.outputs` (NetCDF datasets) and
:mod:`~smcore.evaluation.evaluate` (the ``smcore evaluate`` run).
See docs/evaluation.md.

The step itself is ``smcore.evaluation.evaluate.evaluate(cfg, workdir, ...)`` (not re-exported
here: the function would hide its module).
"""
