"""Data preparation: from CMIP6 + ERA5-Land files to the prepared store (``WD/prepared``).

The steps of ``smcore prepare`` as functions::

    from smcore.prep import prepare, open_prepared
    result = prepare(cfg, "work/", cmip6="cmip6/", era5="era5land/")  # reuses an up-to-date store
    data = open_prepared("work/")  # lazy view: .static, .inputs(exp), .channels

and the pieces: :func:`plan_channels` (catalog → experiments, members, channels),
:func:`model_input` (one dataset → coarse grid, lazy), :func:`reference_on_target`,
:func:`land_mask`, :func:`training_statistics`.
"""

from smcore.prep.channels import ChannelPlan, resolve_experiments, select_channels
from smcore.prep.inputs import check_dataset, compute_inputs, model_input, plan_dataset
from smcore.prep.prepare import PrepareResult, plan_channels, prepare
from smcore.prep.reference import (
    check_splits,
    compute_reference,
    land_mask,
    reference_on_target,
    training_statistics,
)
from smcore.prep.store import PreparedData, open_prepared, split_years, write_prepared

__all__ = [
    "ChannelPlan",
    "PrepareResult",
    "PreparedData",
    "check_dataset",
    "check_splits",
    "compute_inputs",
    "compute_reference",
    "land_mask",
    "model_input",
    "open_prepared",
    "plan_channels",
    "plan_dataset",
    "prepare",
    "reference_on_target",
    "resolve_experiments",
    "select_channels",
    "split_years",
    "training_statistics",
    "write_prepared",
]
