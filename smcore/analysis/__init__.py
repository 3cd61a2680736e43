"""Future analysis of the merged product (Feng et al. 2022, Sect. 2.4.3 and Figs. 6–8).

* :mod:`~smcore.analysis.ssmi`: standardised soil moisture index (Eq. 6);
* :mod:`~smcore.analysis.seasons`: annual and seasonal means (DJF with the previous December);
* :mod:`~smcore.analysis.trends`: Theil–Sen slope and Mann–Kendall test, numba kernels;
* :mod:`~smcore.analysis.change`: regional change rates and area fractions;
* :mod:`~smcore.analysis.analyse`: ``smcore analyse`` orchestration and writes;
* :mod:`~smcore.analysis.figures`: PNG figures.

Definitions and conventions: ``docs/analysis.md``.
"""
