"""intake-esm catalogs (JSON + CSV) of Zarr stores or NetCDF files as CMIP6 input.

The same catalog rows, calendars, unit checks and one-line bad-input errors as for a file
tree, and a prepared store identical to the file tree's, bit for bit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from smcore.cli import main
from smcore.errors import InputError
from smcore.io.catalog import catalog_records, scan
from smcore.prep import prepare
from tests.factories.cmip6 import small_config, write_config_toml, write_inputs
from tests.factories.esm import catalogs, store_differences


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The factory's CMIP6 tree (four models, calendars, conventions), its catalogs, ERA5."""
    root = tmp_path_factory.mktemp("esm")
    cmip6, era5 = write_inputs(root, missing=[("ModelD", "ssp585")])
    write_config_toml(root / "smcore.toml")
    return root, cmip6, era5, catalogs(cmip6, root)


def _without_paths(problems):
    """Problem lines without the file or store they name (the only thing that may differ)."""
    return [p.split(": ", 1)[1] if p.startswith("/") else p for p in problems]


@pytest.mark.parametrize("kind", ["zarr", "netcdf"])
def test_catalog_rows_match_the_file_tree(tree, kind):
    _root, cmip6, _era5, cats = tree
    ref = catalog_records(scan(cmip6, variable="mrsos"))
    got = catalog_records(scan(cats[kind], variable="mrsos"))
    assert len(got) == len(ref) == 11
    for a, b in zip(ref, got, strict=True):
        for key in ("source_id", "experiment_id", "member_id", "table_id", "variable_id",
                    "grid_label", "calendar", "start", "end"):
            assert a[key] == b[key], key
        assert _without_paths(a["problems"]) == _without_paths(b["problems"])
        # one store per dataset; a NetCDF catalog lists every file
        assert b["n_files"] == (1 if kind == "zarr" else a["n_files"])
    c = next(r for r in got if r["source_id"] == "ModelC")
    assert c["calendar"] == "proleptic_gregorian"
    assert "units 'm3 m-3' where CMIP6 prescribes 'kg m-2'" in c["problems"][0]
    if kind == "zarr":
        (d,) = [d for d in scan(cats[kind])
                if (d.source_id, d.experiment_id) == ("ModelB", "ssp126")]
        assert d.version == "v20190101" and d.files[0].format == "zarr"


def test_cli_catalog_reads_a_catalog(tree, capsys):
    _root, cmip6, _era5, cats = tree
    assert main(["catalog", str(cats["zarr"]), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted({r["source_id"] for r in records}) == ["ModelA", "ModelB", "ModelC", "ModelD"]
    assert main(["catalog", str(cats["netcdf"])]) == 0
    assert "11 datasets" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["zarr", "netcdf"])
def test_prepare_from_a_catalog_equals_the_file_tree_bit_for_bit(tree, tmp_path, kind):
    root, cmip6, era5, cats = tree
    cfg = small_config()
    ref = prepare(cfg, tmp_path / "tree", cmip6=cmip6, era5=era5, report=lambda m: None,
                  progress=False)
    msgs: list[str] = []
    got = prepare(cfg, tmp_path / kind, cmip6=cats[kind], era5=era5, report=msgs.append,
                  progress=False)
    assert got.channels == ref.channels == ["ModelA", "ModelB", "ModelC"]
    assert got.excluded == ref.excluded
    assert store_differences(ref.data.path, got.data.path) == []
    manifest = got.data.manifest
    (b_hist,) = [d for d in manifest["datasets"]
                 if (d["source_id"], d["experiment_id"]) == ("ModelB", "historical")]
    assert b_hist["version"] == "v20190101" and b_hist["format"] == kind
    assert b_hist["member_id"] == "r1i1p1f1"
    # unchanged catalog and assets: reused; a changed store or file: prepared again
    again: list[str] = []
    prepare(cfg, tmp_path / kind, cmip6=cats[kind], era5=era5, report=again.append,
            progress=False)
    assert any(m.startswith("up to date") for m in again)
    touched = Path(b_hist["files"][0])
    victim = next(p for p in touched.rglob("*") if p.is_file()) if touched.is_dir() else touched
    victim.touch()
    changed: list[str] = []
    prepare(cfg, tmp_path / kind, cmip6=cats[kind], era5=era5, report=changed.append,
            progress=False)
    assert not any(m.startswith("up to date") for m in changed)


def test_intake_esm_opens_the_written_catalog(tree):
    """The catalog is a real ESM collection: intake-esm itself loads its Zarr datasets."""
    import intake

    from smcore.demo.catalog import zarr_catalog

    root, cmip6, _era5, _cats = tree
    out = root / "zarr_uri"
    # intake-esm opens local Zarr stores by file:// URI only
    json_path = zarr_catalog(cmip6, out, variable="mrsos", location=out)
    assert pd.read_csv(out / "catalog.csv")["zstore"].str.startswith("file:///").all()
    assert len(scan(json_path)) == 11
    cat = intake.open_esm_datastore(str(json_path))
    sub = cat.search(source_id="ModelA", experiment_id="historical")
    coder = xr.coders.CFDatetimeCoder(use_cftime=True)
    (ds,) = sub.to_dataset_dict(
        xarray_open_kwargs={"decode_times": coder}, progressbar=False
    ).values()
    assert ds["mrsos"].sizes["time"] == 84 and ds["time"].dt.calendar == "noleap"
    # moved with its stores, the catalog still finds them beside itself
    moved = root / "moved"
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    (d,) = [d for d in scan(moved / "catalog.json")
            if (d.source_id, d.experiment_id) == ("ModelA", "historical")]
    assert not d.problems and moved in d.files[0].path.parents


# --- bad input: one line naming the asset ----------------------------------------------


@pytest.fixture
def bad(tree, tmp_path):
    """A private copy of the Zarr catalog, to break."""
    root, _cmip6, era5, cats = tree
    dst = tmp_path / "cat"
    shutil.copytree(cats["zarr"].parent, dst)
    return dst, era5, root / "smcore.toml"


def _prepare_error(capsys, cat: Path, era5: Path, config: Path) -> str:
    wd = cat.parent / "wd"
    rc = main(["prepare", "--cmip6", str(cat), "--era5", str(era5), "--workdir", str(wd),
               "--config", str(config)])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if "smcore: error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert not (wd / "prepared").exists()
    return lines[0][lines[0].index("smcore: error:"):]


def _store(cat_dir: Path, source: str, exp: str) -> Path:
    rows = pd.read_csv(cat_dir / "catalog.csv")
    (rel,) = rows.loc[(rows.source_id == source) & (rows.experiment_id == exp), "zstore"]
    return cat_dir / rel


def test_a_missing_store_is_named(bad, capsys):
    cat, era5, config = bad
    store = _store(cat, "ModelA", "historical")
    shutil.rmtree(store)
    msg = _prepare_error(capsys, cat / "catalog.json", era5, config)
    assert msg == f"smcore: error: {store}: unreadable: no such Zarr store"


def test_a_store_with_other_units_or_without_the_variable_is_named(bad, capsys):
    cat, era5, config = bad
    store = _store(cat, "ModelB", "historical")
    ds = xr.open_zarr(store, decode_times=False, mask_and_scale=False).load()
    ds["mrsos"].attrs["units"] = "furlongs"
    for v in ds.variables:
        ds[v].encoding = {}
    shutil.rmtree(store)
    ds.to_zarr(store, zarr_format=2, consolidated=True)
    msg = _prepare_error(capsys, cat / "catalog.json", era5, config)
    assert msg.startswith(f"smcore: error: {store}: mrsos has unknown units 'furlongs'")
    ds = ds.rename({"mrsos": "mrso"})
    shutil.rmtree(store)
    ds.to_zarr(store, zarr_format=2, consolidated=True)
    msg = _prepare_error(capsys, cat / "catalog.json", era5, config)
    assert msg == f"smcore: error: {store}: missing variable mrsos"


def test_a_store_whose_attributes_contradict_its_row_is_named(bad):
    cat, _era5, _config = bad
    rows = pd.read_csv(cat / "catalog.csv", dtype=str)
    row = (rows.source_id == "ModelA") & (rows.experiment_id == "ssp126")
    rows.loc[row, "member_id"] = "r2i1p1f1"
    rows.to_csv(cat / "catalog.csv", index=False)
    (d,) = [d for d in scan(cat / "catalog.json")
            if (d.source_id, d.experiment_id) == ("ModelA", "ssp126")]
    (p,) = d.problems
    assert p.kind == "identity" and p.message.endswith(
        "the catalog says member_id=r2i1p1f1 but the global attribute says r1i1p1f1"
    )


def test_remote_assets_and_broken_catalogs(bad, tmp_path):
    cat, _era5, _config = bad
    rows = pd.read_csv(cat / "catalog.csv", dtype=str)
    rows.loc[0, "zstore"] = "gs://cmip6/CMIP6/CMIP/X/Y/historical/r1i1p1f1/Lmon/mrsos/gn/v1/"
    rows.to_csv(cat / "catalog.csv", index=False)
    first = next(d for d in scan(cat / "catalog.json") if d.problems and d.blocking())
    assert "a remote asset; smcore reads local files and stores only" in str(first.problems[0])
    assert str(first.problems[0]).startswith("gs://cmip6/")
    (cat / "catalog.csv").unlink()
    with pytest.raises(InputError, match="the catalog's CSV file is missing"):
        scan(cat / "catalog.json")
    (junk := tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InputError, match="not a JSON file"):
        scan(junk)
    (other := tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="not an ESM collection"):
        scan(other)


# --- the demo written as a catalog, end to end --------------------------------------------


@pytest.fixture(scope="module")
def zarr_demo(tmp_path_factory):
    from smcore.config import Config
    from smcore.demo.generate import DemoOptions, generate_demo

    out = tmp_path_factory.mktemp("demo") / "zarr"
    generate_demo(out, Config(), DemoOptions(seed=0, small=True, layout="zarr-catalog"),
                  progress=False)
    return out


@pytest.mark.slow
def test_the_zarr_catalog_demo_prepares_as_the_drs_demo(small_demo, zarr_demo, tmp_path):
    drs, cfg = small_demo
    cat = zarr_demo / "cmip6" / "catalog.json"
    assert cat.is_file() and not list((zarr_demo / "cmip6").rglob("*.nc"))
    stores = pd.read_csv(zarr_demo / "cmip6" / "catalog.csv")["zstore"]
    assert stores.str.startswith((zarr_demo / "cmip6").as_uri()).all()
    assert json.loads((zarr_demo / "demo.json").read_text())["layout"] == "zarr-catalog"
    ref = catalog_records(scan(drs / "cmip6", variable="mrsos"))
    got = catalog_records(scan(cat, variable="mrsos"))
    strip = [{k: v for k, v in r.items() if k != "n_files"} for r in ref]
    assert [{k: v for k, v in r.items() if k != "n_files"} for r in got] == strip
    a = prepare(cfg, tmp_path / "drs", cmip6=drs / "cmip6", era5=drs / "era5land",
                report=lambda m: None, progress=False)
    b = prepare(cfg, tmp_path / "zarr", cmip6=cat, era5=zarr_demo / "era5land",
                report=lambda m: None, progress=False)
    assert store_differences(a.data.path, b.data.path) == []
    assert np.isfinite(np.asarray(b.data.inputs("ssp585").values)).any()
