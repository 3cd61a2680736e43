"""The training benchmark runs where GPU nodes are bare: torch, numpy, pandas, xarray only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_STACK = ("netCDF4", "h5netcdf", "cftime", "zarr", "numcodecs", "dask", "distributed")
TINY = ["--device", "cpu", "--coarse", "4x6", "--scale", "2", "--channels", "3", "--features", "8",
        "--depth", "3", "--months", "8", "--seconds", "1", "--rounds", "1"]
LAST_LINE = r"train_throughput ratio=[0-9.]+ project=[0-9.]+ naive=[0-9.]+ device=cpu"


def test_train_throughput_runs_without_the_file_stack() -> None:
    argv = ["train_throughput.py", *TINY, "--schedule", "2", "--schedule-months", "8",
            "--schedule-val", "4"]
    code = (
        "import runpy, sys\n"
        f"for name in {FILE_STACK!r}:\n"
        "    sys.modules[name] = None  # import fails, as on a node without these packages\n"
        f"sys.argv = {argv!r}\n"
        "runpy.run_path('benchmarks/train_throughput.py', run_name='__main__')\n"
        "readers = [m for m in sys.modules if m.startswith(('smcore.prep', 'smcore.io.c'))]\n"
        "assert not readers, readers\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(LAST_LINE, lines[-1]), lines
    schedule = "schedule: 2 epochs x 8 training months (+4 validation) in "
    assert any(line.startswith(schedule) for line in lines), lines
    assert any(line.startswith("work: ") and "GFLOP per training sample" in line for line in lines)
    # the precision of the run (too small a network to measure: fp32) and the share of its ceiling
    assert any(line.startswith("precision: fp32 (default layout), passes of 4 months") for line in lines), lines
    share = r"ceiling share: the project loop \(fp32\) reaches \d+% of the fp32 ceiling"
    assert any(re.match(share, line) for line in lines), lines


# -- the load generator's page (benchmarks/dashboard_load.py) --------------------------------
def test_the_load_clients_page_follows_the_servers_document(load_client) -> None:
    """The JSON page a load client keeps is what Bokeh's protocol says the document is."""
    import numpy as np
    from bokeh.document import Document
    from bokeh.models import Column, ColumnDataSource, Div, Slider, TabPanel, Tabs
    from bokeh.plotting import figure
    from bokeh.protocol import Protocol

    load = load_client
    image = np.arange(12, dtype="float32").reshape(3, 4)
    image[0, 0] = np.nan
    columns = {"image": [image], "x": [70.0], "y": [15.0], "dw": [4.0], "dh": [3.0]}
    source = ColumnDataSource(columns)
    fig = figure(title="CMIP6_DL · 2000-01")
    fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=source)
    slider = Slider(start=0, end=11, value=0, title="")
    tabs = Tabs(tabs=[TabPanel(title="Explorer", child=fig), TabPanel(title="Other", child=Div())])
    doc = Document()
    doc.add_root(Column(Div(text="Month: <b>2000-01</b>"), slider))
    doc.add_root(tabs)

    session = load.Session("ws://unused", 1.0)
    reply = Protocol().create("PULL-DOC-REPLY", "req", doc)
    session.page.load(reply.content["doc"], reply.buffers)
    assert reply.buffers  # the image went as a binary buffer
    assert session.title("CMIP6_DL ·") == "CMIP6_DL · 2000-01"
    assert session.label("Month") == "2000-01"
    assert session.slider("Month").end == 11
    assert [t.title for t in session.tabs().tabs] == ["Explorer", "Other"]
    assert session.plots_in_tab("Explorer") == 1 and session.plots_in_tab("Other") == 0
    glyph = next(r for r in session.figure("CMIP6").renderers if r.glyph.type == "Image")
    np.testing.assert_array_equal(glyph.data_source.data["image"][0], image)

    # what the server sends when the page changes: new values, new data, a new model
    events: list = []
    doc.callbacks.on_change(events.append)
    fig.title.text = "CMIP6_DL · 2000-02"
    source.data = {**source.data, "image": [image * 2]}
    tabs.tabs[1].child = figure(title="Cell 30.00°N 100.00°E")
    patch = Protocol().create("PATCH-DOC", events)
    session.page.apply(patch.content["events"], patch.buffers)
    assert session.title("CMIP6_DL ·") == "CMIP6_DL · 2000-02"
    assert session.title("Cell ") == "Cell 30.00°N 100.00°E"
    assert session.plots_in_tab("Other") == 1
    np.testing.assert_array_equal(glyph.data_source.data["image"][0], image * 2)
    # a model no longer on the page is not found
    events.clear()
    tabs.tabs[1].child = Div()
    patch = Protocol().create("PATCH-DOC", events)
    session.page.apply(patch.content["events"], patch.buffers)
    assert session.plots_in_tab("Other") == 0
    assert all(not p.title.text.startswith("Cell ") for p in session.page.select("Figure"))
