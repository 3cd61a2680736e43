"""CPU precision and micro-batch by measurement: the choice, its margin, the cache, the summary.

The probe's timings are faked (a timer returning set seconds): nothing here depends on how fast
this machine is.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import smcore.train.precision as precision
from smcore.train.loop import train
from smcore.train.precision import (
    BF16_MARGIN,
    FALLBACK_MICRO_BATCH,
    PROBE_MICRO_BATCHES,
    VARIANTS,
    ProbeShape,
    ProbeTimer,
    cache_dir,
    choose,
)
from smcore.train.precision import _OtherLoad as RealOtherLoad
from smcore.train.predict import predict
from smcore.train.runtime import select_runtime
from tests.factories.ynet import tiny_config

torch.set_num_threads(1)

# the default study: 25 models on the 18×33 coarse grid, ×8, YNet 64 wide and 15 deep
STUDY = ProbeShape(in_channels=25, aux_channels=5, features=64, depth=15, coarse=(18, 33), scale=8)


class FakeTimer:
    """Seconds per training month: ``base[variant] * factor[m]``; counts its calls.

    fp32 in channels-last takes ``fp32_cl`` (default: 5 % longer than in the default layout).
    """

    def __init__(self, fp32: float = 1.0, bf16: float = 1.0,
                 micro: dict[int, Any] | None = None, fp32_cl: float | None = None) -> None:
        self.base = {"fp32": fp32, "fp32-cl": fp32_cl or 1.05 * fp32, "bf16": bf16}
        self.micro = micro or {2: 1.2, 4: 1.0, 8: 1.1}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, variant: str, m: int) -> float:
        self.calls.append((variant, m))
        micro = self.micro.get(m, 1.0)
        return self.base[variant] * (micro[variant] if isinstance(micro, dict) else micro)

    def cells(self) -> set[tuple[str, int]]:
        return set(self.calls)


class QuietMachine:
    """Stands in for the other processes' load during a probe: ``busy`` CPUs."""

    busy: float | None = 0.0

    def cores(self) -> float | None:
        return self.busy


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> type[QuietMachine]:
    """No other process disturbs the (fake) probes, whatever else runs on this machine."""
    monkeypatch.setattr(QuietMachine, "busy", 0.0)
    monkeypatch.setattr(precision, "_OtherLoad", QuietMachine)
    return QuietMachine


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "precision.json"


def test_the_study_shape_counts_the_work_of_a_training_month() -> None:
    trunk, fine = STUDY.train_flops()
    assert trunk + fine == pytest.approx(13e9, rel=0.01)  # torch's FLOP counter: 13 GFLOP
    assert STUDY.fine == (144, 264) and STUDY.key == "C25-A5-F64-D15-18x33-x8"


@pytest.mark.parametrize(
    "bf16_seconds, amp",
    [(0.5, "bf16"), (1 / BF16_MARGIN, "bf16"), (0.95, "off"), (1.0, "off"), (1.3, "off")],
)
def test_bf16_only_when_at_least_ten_percent_faster(
    cache: Path, bf16_seconds: float, amp: str
) -> None:
    timer = FakeTimer(fp32=1.0, bf16=bf16_seconds)
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=timer, cache=cache)
    assert c.amp == amp and c.source == "measured" and not c.cached
    assert c.bf16_speedup == pytest.approx(1.0 / bf16_seconds)
    assert timer.cells() == {(v, m) for v in VARIANTS for m in PROBE_MICRO_BATCHES}
    assert c.micro_batch == 4
    assert "passes of 4 months" in c.describe() and f"{1 / bf16_seconds:.2f}x" in c.describe()


def test_micro_batch_is_the_fastest_for_the_chosen_precision(cache: Path) -> None:
    micro = {2: {"fp32": 1.0, "fp32-cl": 1.1, "bf16": 1.3},
             4: {"fp32": 1.1, "fp32-cl": 1.1, "bf16": 1.0},
             8: {"fp32": 1.2, "fp32-cl": 1.1, "bf16": 0.9}}
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(0.5, 0.5, micro), cache=cache)
    assert (c.amp, c.micro_batch, c.channels_last) == ("bf16", 8, True)
    assert c.bf16_speedup == pytest.approx(1.0 / 0.9)  # each precision at its best micro-batch
    c = choose(STUDY, "off", 0, bf16_native=True, timer=FakeTimer(), cache=cache)
    assert (c.amp, c.micro_batch, c.channels_last, c.source) == ("off", 2, False, "cache")


def test_fp32_layout_is_the_faster_one(cache: Path) -> None:
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.95, fp32_cl=0.8),
               cache=cache)
    assert (c.amp, c.channels_last) == ("off", True)
    assert c.bf16_speedup == pytest.approx(0.8 / 0.95)  # against the faster fp32 layout
    assert "fp32 (channels-last)" in c.describe()
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.5, fp32_cl=1.2),
               cache=cache.with_name("other.json"))
    assert (c.amp, c.channels_last) == ("bf16", True)  # bf16 always runs channels-last


def test_forced_modes_are_obeyed(cache: Path) -> None:
    timer = FakeTimer(fp32=1.0, bf16=0.5)
    c = choose(STUDY, "off", 2, bf16_native=True, timer=timer, cache=cache)
    assert (c.amp, c.micro_batch, c.source, c.bf16_speedup) == ("off", 2, "forced", None)
    assert timer.calls == [] and not cache.exists()
    c = choose(STUDY, "off", 0, bf16_native=True, timer=timer, cache=cache)  # micro-batch only
    fp32 = {(v, m) for v in ("fp32", "fp32-cl") for m in PROBE_MICRO_BATCHES}
    assert c.amp == "off" and timer.cells() == fp32  # and the layout
    assert c.bf16_speedup is None
    timer.calls.clear()
    c = choose(STUDY, "auto", 3, bf16_native=True, timer=timer, cache=cache)  # precision only
    assert (c.amp, c.micro_batch) == ("bf16", 3)
    assert timer.cells() == {("fp32", 3), ("fp32-cl", 3), ("bf16", 3)}
    timer.calls.clear()
    c = choose(STUDY, "bf16", 0, bf16_native=True, timer=FakeTimer(fp32=0.1, bf16=1.0), cache=cache)
    assert c.amp == "bf16" and c.source == "measured"  # forced, though slower
    # no native bf16: auto never measures bf16
    c = choose(STUDY, "auto", 0, bf16_native=False, timer=timer, cache=cache.with_name("x.json"))
    assert c.amp == "off" and {v for v, _ in timer.calls} == {"fp32", "fp32-cl"}


def test_the_cache_is_read_back_and_keyed(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.6), cache=cache)
    assert first.source == "measured" and first.cache == cache and cache.exists()

    def no_probe(variant: str, m: int) -> float:
        raise AssertionError("measured again")

    again = choose(STUDY, "auto", 0, bf16_native=True, timer=no_probe, cache=cache)
    assert again.source == "cache" and again.cached
    assert (again.amp, again.micro_batch, again.bf16_speedup) == (first.amp, first.micro_batch,
                                                                  first.bf16_speedup)
    assert "measured earlier" in again.describe()
    entries = json.loads(cache.read_text())["entries"]
    (key,) = entries
    assert f"threads={torch.get_num_threads()}" in key and torch.__version__ in key
    assert STUDY.key in key
    # another shape, another thread count: measured anew, kept beside the first
    other = ProbeShape(25, 5, 32, 15, (18, 33), 8)
    for shape in (other, STUDY):
        c = choose(shape, "auto", 0, bf16_native=True, timer=FakeTimer(), cache=cache)
        assert c.source == "measured"
        monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert len(json.loads(cache.read_text())["entries"]) == 3


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"version": 0, "entries": {}}),
        "BROKEN",
    ],
)
def test_a_corrupt_cache_is_ignored_and_replaced(cache: Path, content: str) -> None:
    cache.write_text(content)
    lines: list[str] = []
    timer = FakeTimer(1.0, 0.5)
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=timer, cache=cache, report=lines.append)
    assert c.source == "measured" and c.amp == "bf16" and timer.calls
    assert any("ignoring" in line for line in lines)
    assert json.loads(cache.read_text())["version"] == precision.CACHE_VERSION


def test_malformed_timings_in_the_cache_are_measured_again(cache: Path) -> None:
    choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.5), cache=cache)
    data = json.loads(cache.read_text())
    (entry,) = data["entries"].values()
    entry["seconds"]["bf16"]["4"] = "fast"
    entry["seconds"]["fp32"]["8"] = -1.0
    cache.write_text(json.dumps(data))
    timer = FakeTimer(1.0, 0.5)
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=timer, cache=cache)
    assert c.source == "measured" and timer.cells() == {("bf16", 4), ("fp32", 8)}


def test_unwritable_cache_still_chooses(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.5),
               cache=blocker / "precision.json")
    assert c.amp == "bf16" and c.cache is None and "cached in" not in c.describe()


def test_a_disturbed_probe_is_used_but_not_cached(cache: Path, quiet: type[QuietMachine]) -> None:
    quiet.busy = float(os.cpu_count() or 1)  # other processes kept every CPU busy
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.5), cache=cache)
    assert c.amp == "bf16" and c.source == "measured" and c.cache is None
    assert c.disturbed == quiet.busy
    assert not cache.exists() and "not cached" in c.describe()
    quiet.busy = None  # no /proc/stat: nothing known, cached
    c = choose(STUDY, "auto", 0, bf16_native=True, timer=FakeTimer(1.0, 0.5), cache=cache)
    assert c.cache == cache and cache.exists()


def test_other_processes_load_is_read() -> None:
    load = RealOtherLoad()
    sum(range(200_000))
    busy = load.cores()
    assert busy is None or (math.isfinite(busy) and busy >= 0.0)


def test_tiny_networks_and_missing_shapes_are_not_measured(cache: Path) -> None:
    timer = FakeTimer()
    tiny = ProbeShape(3, 5, 8, 3, (4, 6), 2)
    for shape in (tiny, None):
        c = choose(shape, "auto", 0, bf16_native=True, timer=timer, cache=cache)
        assert (c.amp, c.micro_batch, c.source) == ("off", FALLBACK_MICRO_BATCH, "fixed")
    assert timer.calls == [] and not cache.exists()


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMCORE_CACHE_DIR", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"
    monkeypatch.delenv("SMCORE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "smcore"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "smcore"


def test_the_session_cache_is_a_temporary_folder() -> None:
    assert Path.home() not in cache_dir().parents


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_select_runtime_follows_the_choice_and_reports_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("smcore.train.runtime.cpu_supports_bf16", lambda: True)
    lines: list[str] = []
    rt = select_runtime("cpu", "auto", shape=STUDY, timer=FakeTimer(1.0, 0.5), report=lines.append)
    assert rt.amp == "bf16" and rt.channels_last and rt.micro_batch == 4
    assert rt.choice is not None and rt.choice.source == "measured"
    assert len(lines) == 1 and lines[0].startswith("precision: bf16")
    rt = select_runtime("cpu", "auto", shape=STUDY, report=lines.append)  # from the cache
    assert rt.amp == "bf16" and rt.choice is not None and rt.choice.cached and len(lines) == 2
    rt = select_runtime("cpu", "off", micro_batch=8, shape=STUDY)
    assert rt.amp == "off" and not rt.channels_last and rt.micro_batch == 8
    assert rt.choice is not None and rt.choice.source == "forced"


def test_the_probe_times_a_real_training_pass() -> None:
    timer = ProbeTimer(ProbeShape(3, 2, 8, 4, (4, 6), 2))
    state = torch.get_rng_state()
    for variant in VARIANTS:
        for m in (2, 1):
            s = timer(variant, m)
            assert math.isfinite(s) and s > 0
    assert torch.equal(torch.get_rng_state(), state)  # training's random draws are unchanged


def test_summary_records_the_choice(fresh_ynet_workdir, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    """Training measures at its shape (here faked), prints the choice and the ratio once and
    records them in summary.json; the second run and prediction read the answer from the cache,
    and prediction runs in the precision, layout and micro-batch training chose."""
    import smcore.train.predict as predict_module

    monkeypatch.setenv("SMCORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "MIN_PROBE_FLOPS", 0.0)  # measure even the tiny network
    timers: list[FakeTimer] = []

    def fake_probe(shape: ProbeShape) -> FakeTimer:
        # fp32 channels-last fastest, bf16 no faster than fp32: fp32 channels-last, passes of 2
        timers.append(FakeTimer(fp32=1.0, bf16=0.95, fp32_cl=0.9, micro={2: 0.9, 4: 1.0, 8: 1.1}))
        return timers[-1]

    monkeypatch.setattr(precision, "ProbeTimer", fake_probe)
    monkeypatch.setattr("smcore.train.runtime.cpu_supports_bf16", lambda: True)
    cfg = tiny_config(epochs=1, amp="auto")
    lines: list[str] = []
    train(cfg, fresh_ynet_workdir("a"), progress=False, report=lines.append)
    wd_a = tmp_path / "a"
    summary = json.loads((wd_a / "training" / "summary.json").read_text())
    assert summary["amp"] == "off" and summary["micro_batch"] == 2
    assert summary["channels_last"] is True
    assert summary["precision_source"] == "measured"
    assert summary["bf16_speedup"] == pytest.approx(0.9 / 0.95)
    assert len(lines) == 1
    assert lines[0].startswith("precision: fp32 (channels-last), passes of 2 months")
    assert f"{0.9 / 0.95:.2f}x as fast as fp32" in lines[0]
    assert len(timers) == 1
    train(cfg, fresh_ynet_workdir("b"), progress=False, report=lines.append)
    summary = json.loads((tmp_path / "b" / "training" / "summary.json").read_text())
    assert summary["precision_source"] == "cache" and summary["micro_batch"] == 2
    assert len(timers) == 1 and len(lines) == 2 and "measured earlier" in lines[1]
    runtimes = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        runtimes.append(select_runtime(*args, **kwargs))
        return runtimes[-1]

    monkeypatch.setattr(predict_module, "select_runtime", spy)
    (path,) = predict(cfg, wd_a, experiments=["ssp245"], progress=False, report=lines.append)
    assert path.exists() and len(timers) == 1 and len(lines) == 2  # prediction found the cache
    (rt,) = runtimes
    assert (rt.amp, rt.channels_last, rt.micro_batch) == ("off", True, 2)  # training's choice
    assert rt.choice is not None and rt.choice.cached


def test_the_measurement_is_counted_for_the_dashboard(cache: Path, tmp_path: Path,
                                                      step_progress) -> None:
    timer = FakeTimer()
    written = step_progress(tmp_path / "wd", "train", lambda: choose(
        STUDY, "auto", 0, bf16_native=True, timer=timer, cache=cache))
    bars = [(b["desc"], b["n"], b["total"], b["unit"]) for w in written for b in w]
    total = len(timer.calls)  # a warm-up and PROBE_ROUNDS rounds of every cell
    desc = "measuring the CPU's precision and micro-batch"
    assert (desc, 0, total, "timing") in bars and (desc, total, total, "timing") in bars
    assert written[-1] == []  # the bar closed with the measurement
