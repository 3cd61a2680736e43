import itertools

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


SHIFTED_SPLIT = {"periods.train": "1985-2001", "periods.val": "2002-2007", "periods.test": "2008-2014"}


@pytest.mark.parametrize("order", list(itertools.permutations(SHIFTED_SPLIT)))
def test_overrides_of_one_call_are_validated_together(order):
    """A split whose training years reach into the default validation years, in any order."""
    from smcore.cli.common import build_config

    cfg = build_config(None, **{key: SHIFTED_SPLIT[key] for key in order})
    assert (cfg.periods.train, cfg.periods.val, cfg.periods.test) == (
        (1985, 2001), (2002, 2007), (2008, 2014)
    )
    raw = {key: parse_year_range(SHIFTED_SPLIT[key]) for key in order}
    assert Config().override(**raw) == cfg


def test_an_inconsistent_split_is_still_refused_once_all_overrides_apply():
    from smcore.cli.common import build_config
    from smcore.errors import ConfigError

    with pytest.raises(ConfigError, match="overlap"):
        build_config(None, **{"periods.train": "1985-2003", "periods.val": "2002-2007"})


def test_cli_prepare_accepts_a_shifted_split(tmp_path, capsys):
    """The options are parsed and validated before any input is read (the folders are empty)."""
    from smcore.cli import main

    (tmp_path / "cmip6").mkdir()
    (tmp_path / "era5").mkdir()
    rc = main([
        "prepare", "--cmip6", str(tmp_path / "cmip6"), "--era5", str(tmp_path / "era5"),
        "--workdir", str(tmp_path / "wd"), "--train", "1985-2001", "--val", "2002-2007",
        "--test", "2008-2014",
    ])
    err = capsys.readouterr().err
    assert rc != 0  # empty input folders
    assert "overlap" not in err


def test_train_config_checks_itself_on_construction():
    from smcore.config import TrainConfig
    from smcore.errors import ConfigError

    with pytest.raises(ConfigError, match="batch size must be >= 1.*unknown amp mode"):
        TrainConfig(batch_size=0, amp="fp8")
    with pytest.raises(ConfigError, match="input_norm must be one of"):
        Config().override(**{"train.input_norm": "minmax"})
    with pytest.raises(ConfigError, match="forced_window_years > 0 needs"):
        TrainConfig(input_norm="standard", target_norm="standard", forced_window_years=5)
    with pytest.raises(ConfigError, match="unknown device"):
        TrainConfig(device="tpu")
    assert TrainConfig(device="cuda:1").device == "cuda:1"


def test_analysis_config_defaults_toml_and_validation(tmp_path):
    from smcore.config import AnalysisConfig
    from smcore.errors import ConfigError

    assert Config().analysis == AnalysisConfig(mk_test="hamed_rao", fdr_alpha=0.1)
    p = tmp_path / "c.toml"
    p.write_text('[analysis]\nmk_test = "tfpw"\nfdr_alpha = 0.05\n')
    cfg = load_config(p)
    assert cfg.analysis == AnalysisConfig("tfpw", 0.05)
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict({"scale": 4}).analysis == AnalysisConfig()  # older recorded configs
    assert Config().override(**{"analysis.fdr_alpha": "0.2"}).analysis.fdr_alpha == 0.2
    with pytest.raises(ConfigError, match="mk_test must be one of original, hamed_rao, tfpw.*alph"):
        AnalysisConfig(mk_test="sen", fdr_alpha=1.5)
    with pytest.raises(ConfigError, match=r"fdr_alpha must be in \(0, 1\)"):
        Config().override(**{"analysis.fdr_alpha": 0})
    p.write_text('[analysis]\nmk_test = "yue_wang"\n')
    with pytest.raises(ValueError, match="invalid configuration: analysis.mk_test"):
        load_config(p)
