"""The evaluation protocol: several training seeds, mean ± sd of every score, and where we lose.

Usage::

    .venv/bin/python benchmarks/skill.py --data DEMO --work ROOT [--seeds 3] [--epochs 5]
        [--set train.forced_method=climwip ...] [--label NAME] [--validation-only]
        [--json OUT.json] [--docs docs/evaluation.md]

``DEMO`` is a folder written by ``smcore demo-data`` (its ``smcore.toml`` gives the study;
``--shared-weather`` there sets how much weather the models share with the truth). The
inputs are prepared once under ``ROOT/prepared-once``; every seed then trains, predicts,
evaluates (``--truth DEMO/truth``) and analyses in its own work directory
``ROOT/<label>-seed<S>`` that shares the prepared store (hard links) — exactly the steps
``smcore run`` takes, with ``train.seed = S``.

Reported per seed and as mean ± sd over seeds:

- ``validation``: CMIP6_DL against the reference on the **validation** months (what design
  choices are made on; ``--validation-only`` predicts only the historical period and stops
  here);
- ``test``: every product of ``evaluation/metrics.csv`` on the test months, and
  CMIP6_DL − the best baseline (the one with the best mean over seeds) per score;
- ``truth``: every product against the demo truth per SSP, 2015–2100
  (``evaluation/truth_metrics.csv``);
- ``future change``: the spatial correlation of the product's annual SSMI trend map with the
  truth's (``analysis/truth_trend_comparison.csv``), and the mean absolute error of its change
  rates (``analysis/change_rates.csv``, percent) against the truth's, per SSP.

``--docs`` writes the tables between ``<!-- skill:<label>:start -->`` and
``<!-- skill:<label>:end -->`` in that file (added at its end the first time), so that the
tables in docs/evaluation.md are generated, never typed. The last line printed is::

    skill label=<label> seeds=<n> dl_minus_best_mae=<mean>±<sd> best=<baseline>
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smcore.analysis.analyse import analyse, open_chunked  # noqa: E402
from smcore.analysis.change import change_rates, region_masks, regional_mean  # noqa: E402
from smcore.config import Config, load_config  # noqa: E402
from smcore.distributed import compute  # noqa: E402
from smcore.evaluation.evaluate import evaluate  # noqa: E402
from smcore.evaluation.fitting import BASELINES, DL  # noqa: E402
from smcore.evaluation.metrics import SCORE_COLUMNS, score_product  # noqa: E402
from smcore.prep.prepare import prepare  # noqa: E402
from smcore.prep.store import open_prepared  # noqa: E402
from smcore.train.loop import train  # noqa: E402
from smcore.train.predict import predict  # noqa: E402
from smcore.workdir import WorkDir  # noqa: E402

LOWER_IS_BETTER = {"MAE": True, "RMSD": True, "ubRMSD": True, "r": False, "spatial_r": False,
                   "anomaly_r": False}


def _quiet(_: str) -> None:
    return None


def prepare_once(data: Path, root: Path, cfg: Config) -> WorkDir:
    """The demo's inputs prepared once (reused when up to date)."""
    wd = WorkDir(root / "prepared-once")
    prepare(cfg, wd, cmip6=data / "cmip6", era5=data / "era5land", progress=False, report=_quiet)
    return wd


def share_prepared(shared: WorkDir, wd: WorkDir) -> None:
    """``wd`` gets the prepared store of ``shared`` as hard links (no copy, never written)."""
    if wd.root.exists():
        shutil.rmtree(wd.root)
    wd.root.mkdir(parents=True)
    shutil.copytree(shared.prepared, wd.prepared, copy_function=os.link)


def validation_scores(wd: WorkDir) -> dict[str, float]:
    """CMIP6_DL against the reference over the validation months, on the scored land pixels."""
    import xarray as xr

    prepared = open_prepared(wd)
    val = prepared.split_mask("val")
    land = np.asarray(prepared.static["land_mask"].values) != 0
    ref = np.asarray(prepared.static["reference"].values[val], dtype=np.float32)
    with xr.open_dataset(wd.product("historical")) as ds:
        stamps = pd.DatetimeIndex(ds["time"].values).to_period("M")
        want = pd.DatetimeIndex(prepared.static["time"].values[val]).to_period("M")
        pos = [stamps.get_loc(m) for m in want]
        dl = np.asarray(ds["ssm"].values[pos], dtype=np.float32)
    ok = land & np.isfinite(ref).all(axis=0) & np.isfinite(dl).all(axis=0)
    months = np.asarray(want.month)
    scores = score_product(dl[:, ok], ref[:, ok], months).row()
    return {k: float(scores[k]) for k in ("MAE", "RMSD", "anomaly_r")}


def truth_change_rates(truth: Path, cfg: Config, scenarios: list[str]) -> pd.DataFrame:
    """The change rates (percent) of the demo truth itself, as ``smcore analyse`` computes them."""
    p = cfg.periods
    hist = open_chunked(truth / "truth_historical.nc", what="truth")
    masks = region_masks(hist["lat"], hist["lon"], cfg.north_south_split_lat, cfg.east_of_lon)
    (hist_reg,) = compute(regional_mean(hist, masks), progress=False)
    regional = {}
    for exp in scenarios:
        (regional[exp],) = compute(
            regional_mean(open_chunked(truth / f"truth_{exp}.nc", what="truth"), masks),
            progress=False,
        )
    return change_rates(hist_reg, regional, p.baseline, p.change)


def future_change(wd: WorkDir, truth_rates: pd.DataFrame) -> pd.DataFrame:
    """Per SSP: annual trend pattern correlation with the truth and change-rate MAE (percent)."""
    trends = pd.read_csv(wd.path("truth_trend_comparison"))
    trends = trends[trends["season"] == "annual"].set_index("experiment")["spatial_r"]
    rates = pd.read_csv(wd.path("change_rates"))
    keys = ["experiment", "region", "period", "timescale"]
    both = rates.merge(truth_rates, on=keys, suffixes=("", "_truth"))
    err = (both["value"] - both["value_truth"]).abs().groupby(both["experiment"]).mean()
    return pd.DataFrame({"trend_pattern_r": trends, "change_rate_mae_pct": err})


def _done(wd: WorkDir, name: str, scenarios: list[str]) -> bool:
    """Whether a step's outputs are all there (``--resume`` keeps them)."""
    if name == "train":
        return wd.summary.exists() and wd.checkpoint_best.exists()
    if name == "predict":
        return all(wd.product(exp).exists() for exp in scenarios)
    if name == "evaluate":
        return wd.path("metrics").exists() and wd.path("truth_metrics").exists()
    return wd.path("truth_trend_comparison").exists() and wd.path("change_rates").exists()


def run_seed(shared: WorkDir, root: Path, label: str, cfg: Config, seed: int, truth: Path,
             truth_rates: pd.DataFrame | None, validation_only: bool,
             resume: bool = False) -> dict[str, Any]:
    """One seed through train → predict → (evaluate → analyse); its tables and timings.

    ``resume``: a seed folder left by an interrupted run of the same protocol keeps the steps
    whose outputs are complete (a step after a rerun step is always rerun).
    """
    wd = WorkDir(root / f"{label}-seed{seed}")
    resume = resume and wd.prepared.exists()
    if not resume:
        share_prepared(shared, wd)
    cfg = cfg.override(**{"train.seed": seed})
    seconds: dict[str, float] = {}
    exps = ["historical"] if validation_only else None
    wanted = ["historical"] if validation_only else shared.experiments()

    def step(name: str, fn: Any) -> None:
        nonlocal resume
        if resume and _done(wd, name, wanted):
            print(f"  seed {seed}: {name} kept from the interrupted run", flush=True)
            return
        resume = False
        t0 = time.perf_counter()
        fn()
        seconds[name] = round(time.perf_counter() - t0, 1)
        print(f"  seed {seed}: {name} {seconds[name]:.0f} s", flush=True)

    step("train", lambda: train(cfg, wd, progress=False, report=_quiet))
    step("predict", lambda: predict(cfg, wd, experiments=exps, progress=False, report=_quiet))
    out: dict[str, Any] = {"seed": seed, "seconds": seconds, "validation": validation_scores(wd)}
    if validation_only:
        return out
    step("evaluate", lambda: evaluate(cfg, wd, truth=truth, progress=False, report=_quiet))
    step("analyse", lambda: analyse(cfg, wd, truth=truth, progress=False, report=_quiet,
                                    figures=False))
    out["test"] = pd.read_csv(wd.path("metrics"))
    out["truth"] = pd.read_csv(wd.path("truth_metrics"))
    if wd.path("calibration").exists():
        out["calibration"] = pd.read_csv(wd.path("calibration"))
    if truth_rates is not None:
        out["future"] = future_change(wd, truth_rates)
    return out


def _pm(values: pd.Series | np.ndarray, digits: int = 4) -> str:
    v = np.asarray(values, dtype=float)
    sd = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
    mean = float(np.mean(v))
    mean = 0.0 if abs(mean) < 0.5 * 10.0**-digits else mean  # no "-0.000"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def summarise(runs: list[dict[str, Any]], models: set[str]) -> tuple[str, dict[str, Any]]:
    """Markdown tables (mean ± sd over seeds) and the numbers behind them."""
    lines: list[str] = []
    record: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    val = pd.DataFrame([r["validation"] for r in runs])
    lines += ["**Validation months** (CMIP6_DL against the reference; what choices are made on):",
              "", "| MAE | RMSD | anomaly r |", "|---|---|---|",
              f"| {_pm(val['MAE'], 5)} | {_pm(val['RMSD'], 5)} | {_pm(val['anomaly_r'], 3)} |", ""]
    record["validation"] = val.to_dict(orient="list")
    if "test" not in runs[0]:
        return "\n".join(lines), record

    test = pd.concat([r["test"].assign(seed=r["seed"]) for r in runs])
    test = test[~test["product"].isin(models)]
    cols = [c for c in SCORE_COLUMNS if c in LOWER_IS_BETTER]
    lines += ["**Test months** (mean ± sd over seeds; the baselines do not depend on the seed):",
              "", "| product | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for product, rows in test.groupby("product", sort=False):
        lines.append(f"| {product} | " + " | ".join(
            _pm(rows[c], 5 if LOWER_IS_BETTER[c] else 3) for c in cols) + " |")
    record["test"] = test.to_dict(orient="list")
    baselines = [b for b in BASELINES if b in set(test["product"])]
    lines += ["", "**CMIP6_DL − best baseline** (per score, the baseline with the best mean; "
              "negative MAE/RMSD and positive r mean CMIP6_DL is better):", "",
              "| score | best baseline | CMIP6_DL − best | seeds where CMIP6_DL is better |",
              "|---|---|---|---|"]
    diffs: dict[str, Any] = {}
    for c in cols:
        means = test[test["product"].isin(baselines)].groupby("product")[c].mean()
        best = means.idxmin() if LOWER_IS_BETTER[c] else means.idxmax()
        dl = test[test["product"] == DL].set_index("seed")[c]
        ref = test[test["product"] == best].set_index("seed")[c]
        d = (dl - ref).to_numpy()
        better = int((d < 0).sum() if LOWER_IS_BETTER[c] else (d > 0).sum())
        lines.append(f"| {c} | {best} | {_pm(d, 5 if LOWER_IS_BETTER[c] else 3)} | "
                     f"{better} of {d.size} |")
        diffs[c] = {"best": best, "diff": d.tolist()}
    record["dl_minus_best"] = diffs

    truth = pd.concat([r["truth"].assign(seed=r["seed"]) for r in runs])
    truth = truth[truth["experiment"] != "historical"]
    truth_mean = truth.groupby(["experiment", "product"], sort=False)["MAE"].agg(["mean", "std"])
    lines += ["", "**Against the truth, 2015–2100** (MAE, mean ± sd over seeds):", "",
              "| product | " + " | ".join(sorted(set(truth["experiment"]))) + " |",
              "|---|" + "---|" * len(set(truth["experiment"]))]
    for product in truth["product"].unique():
        cells = []
        for exp in sorted(set(truth["experiment"])):
            m, s = truth_mean.loc[(exp, product)]
            cells.append(f"{m:.5f} ± {0 if np.isnan(s) else s:.5f}")
        lines.append(f"| {product} | " + " | ".join(cells) + " |")
    record["truth"] = truth.to_dict(orient="list")

    if "future" in runs[0]:
        fut = pd.concat([r["future"].assign(seed=r["seed"]) for r in runs])
        lines += ["", "**Future change of CMIP6_DL against the truth** (per SSP, mean ± sd over "
                  "seeds): the annual SSMI trend map's pattern correlation and the mean absolute "
                  "error of the change rates (percentage points):", "",
                  "| SSP | trend pattern r | change-rate MAE (%) |", "|---|---|---|"]
        for exp, rows in fut.groupby(level=0):
            lines.append(f"| {exp} | {_pm(rows['trend_pattern_r'], 3)} | "
                         f"{_pm(rows['change_rate_mae_pct'], 2)} |")
        record["future"] = fut.reset_index().to_dict(orient="list")

    if all("calibration" in r for r in runs):
        lines += ["", *calibration_table(runs)]
        cal = pd.concat([r["calibration"].assign(seed=r["seed"]) for r in runs])
        record["calibration"] = cal.to_dict(orient="list")
    return "\n".join(lines), record


def calibration_table(runs: list[dict[str, Any]]) -> list[str]:
    """Coverage and width of the 90 % interval, CRPS and the PIT histogram's largest departure
    from flat, per product, reference and period (``evaluation/calibration.csv``)."""
    cal = pd.concat([r["calibration"].assign(seed=r["seed"]) for r in runs])
    pit = [c for c in cal.columns if c.startswith("pit_")]
    if pit:
        cal["pit_max_dev"] = (cal[pit].sub(1.0 / len(pit))).abs().max(axis=1)
    lines = ["**Calibration** (`evaluation/calibration.csv`, mean ± sd over seeds; target "
             "coverage of the 90 % interval: 0.88–0.92 on the test months, 0.85–0.95 per SSP; "
             "lower CRPS is better; PIT: largest departure of a decile's share from 0.1):", "",
             "| product | against | experiment | period | coverage | width (m3 m-3) | CRPS | PIT |",
             "|---|---|---|---|---|---|---|---|"]
    keys = ["product", "against", "experiment", "period"]
    for key, rows in cal.groupby(keys, sort=False):
        cells = [_pm(rows["coverage"], 3), _pm(rows["width"], 4), _pm(rows["CRPS"], 5),
                 _pm(rows["pit_max_dev"], 3) if pit else "—"]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return lines


def write_docs(path: Path, label: str, header: str, body: str) -> None:
    """Replace (or append) the block ``<!-- skill:label:start -->`` … ``end`` in ``path``."""
    start, end = f"<!-- skill:{label}:start -->", f"<!-- skill:{label}:end -->"
    block = f"{start}\n{header}\n\n{body}\n{end}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip("\n") + "\n\n" + block + "\n")
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a smcore demo-data folder")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the runs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5, help="as `make demo` trains")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override, e.g. train.forced_method=climwip")
    parser.add_argument("--label", default="default")
    parser.add_argument("--validation-only", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="keep the complete steps of seed folders an interrupted run left")
    args = parser.parse_args(argv)

    cfg = load_config(args.data / "smcore.toml", **{"train.epochs": args.epochs})
    for item in args.set:
        key, _, value = item.partition("=")
        try:  # TOML values: 0.5, false, ["a", "b"], "text"; a bare word is a string
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        cfg = cfg.override(**{key: parsed})
    demo = json.loads((args.data / "demo.json").read_text())
    truth = args.data / "truth"
    t0 = time.perf_counter()
    shared = prepare_once(args.data, args.work, cfg)
    scenarios = shared.scenarios()
    truth_rates = None if args.validation_only else truth_change_rates(truth, cfg, scenarios)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs.append(run_seed(shared, args.work, args.label, cfg, seed, truth, truth_rates,
                             args.validation_only, resume=args.resume))
    body, record = summarise(runs, {m.source_id for m in cfg.models})
    settings = ", ".join(args.set) or "defaults"
    header = (f"Demo seed {demo['seed']}, shared weather {demo.get('shared_weather', 0.5)}, "
              f"{len(cfg.models)} models; {args.epochs} epochs; training seeds "
              f"{args.first_seed}–{args.first_seed + args.seeds - 1}; settings: {settings}. "
              f"Generated by `benchmarks/skill.py --data DEMO --work ROOT --seeds {args.seeds} "
              f"--epochs {args.epochs} --label {args.label}"
              + "".join(f" --set {s}" for s in args.set)
              + (" --validation-only" if args.validation_only else "") + "`.")
    print(header)
    print(body)
    record.update(label=args.label, settings=args.set, demo=demo, epochs=args.epochs,
                  seconds=[r["seconds"] for r in runs], total_seconds=time.perf_counter() - t0)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1, default=str))
    if args.docs:
        write_docs(args.docs, args.label, header, body)
    if "dl_minus_best" in record:
        mae = record["dl_minus_best"]["MAE"]
        d = np.asarray(mae["diff"])
        sd = float(np.std(d, ddof=1)) if d.size > 1 else float("nan")
        print(f"skill label={args.label} seeds={len(runs)} dl_minus_best_mae="
              f"{d.mean():.5f}±{sd:.5f} best={mae['best']}")
    else:
        v = np.asarray(record["validation"]["MAE"])
        print(f"skill label={args.label} seeds={len(runs)} validation_mae={v.mean():.5f}"
              f"±{(np.std(v, ddof=1) if v.size > 1 else float('nan')):.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
