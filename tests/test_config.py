import numpy as np
import pytest

from smcore.config import Config, GridSpec, load_config, parse_year_range


def test_default_grids_match_the_paper():
    cfg = Config()
    t, c = cfg.target, cfg.coarse
    assert t.shape == (144, 264)
    assert t.lat[0] == 18.0 and t.lat[-1] == 53.75
    assert t.lon[0] == 71.0 and t.lon[-1] == 136.75
    assert c.shape == (18, 33)
    assert c.res == 2.0


def test_coarse_cells_hold_exactly_scale_by_scale_target_cells():
    cfg = Config()
    t, c = cfg.target, cfg.coarse
    # each coarse centre is the mean of the 8 target centres it holds
    np.testing.assert_allclose(t.lat.reshape(18, 8).mean(axis=1), c.lat)
    np.testing.assert_allclose(t.lon.reshape(33, 8).mean(axis=1), c.lon)
    # and the outer edges coincide
    assert t.extent() == c.extent()


def test_coarsen_rejects_non_divisible_grid():
    with pytest.raises(ValueError, match="not divisible"):
        GridSpec(0, 0, 1.0, 10, 12).coarsen(8)


def test_table1_has_25_models_with_paper_members():
    cfg = Config()
    assert len(cfg.models) == 25
    members = {m.source_id: m.member_id for m in cfg.models}
    assert members["CanESM5-CanOE"] == "r1i1p2f1"
    for name in ("GISS-E2-1-G", "MIROC-ES2L", "UKESM1-0-LL"):
        assert members[name] == "r1i1p1f2"
    assert cfg.model("UKESM1-0-LL").calendar == "360_day"
    assert cfg.model("KACE-1-0-G").calendar == "360_day"


def test_periods_defaults_and_validation():
    cfg = Config()
    assert cfg.periods.train == (1950, 1999)
    assert cfg.periods.val == (2000, 2007)
    assert cfg.periods.test == (2008, 2014)
    assert cfg.periods.future == (2015, 2100)
    assert cfg.periods.historical == (1950, 2014)
    with pytest.raises(ValueError, match="overlap"):
        cfg.override(**{"periods.val": (1990, 2007)})


def test_override_dotted_and_none_is_ignored():
    cfg = Config().override(**{"train.epochs": 5, "scale": None, "periods.test": [2009, 2014]})
    assert cfg.train.epochs == 5
    assert cfg.scale == 8
    assert cfg.periods.test == (2009, 2014)
    with pytest.raises(KeyError):
        Config().override(nonsense=1)


def test_toml_roundtrip(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(
        'experiments = ["historical", "ssp245"]\nscale = 4\n'
        "[periods]\ntrain = [1960, 1990]\n[train]\nepochs = 3\n"
        '[[models]]\nsource_id = "X"\ninstitution_id = "Y"\n'
    )
    cfg = load_config(p)
    assert cfg.experiments == ("historical", "ssp245")
    assert cfg.scale == 4 and cfg.coarse.shape == (36, 66)
    assert cfg.periods.train == (1960, 1990)
    assert cfg.train.epochs == 3
    assert [m.source_id for m in cfg.models] == ["X"]
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_bad_toml_names_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("nonsense = 1\n")
    with pytest.raises(ValueError, match="bad.toml"):
        load_config(p)


def test_parse_year_range():
    assert parse_year_range("1950-1999") == (1950, 1999)
    with pytest.raises(ValueError):
        parse_year_range("1999-1950")
    with pytest.raises(ValueError):
        parse_year_range("abc")
