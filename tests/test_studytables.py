"""``prunelab.report.studytables``, what the studies' tables share, on tiny made-up numbers:
the one formatter of mean ± std, the one paired t-test, the log-scale interpolation, finding
an arm and reading a summary; and each study's tables.py on a folder without its arms."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from prunelab.report import studytables as st

from .conftest import ROOT


def test_pm_is_mean_and_sample_std_in_percent_through_the_report_s_formatter():
    assert st.pm([0.9, 0.92, 0.94]) == "92.00 ± 2.00"
    assert st.pm([0.9, float("nan"), None]) == "90.00 ± 0.00"  # one finite value
    assert st.pm([0.9], lone_std=False) == "90.00"
    assert st.pm([0.01, 0.03], signed=True) == "+2.00 ± 1.41"
    assert st.pm([]) == "–" and st.pm([], missing="—") == "—"


def test_pm_stats_writes_a_stats_row_as_the_first_round_did():
    df = pd.DataFrame({"strategy": ["weight"] * 3, "sparsity": [0.9, 0.9, 0.5],
                       "test_acc": [0.95, 0.97, 0.98]})  # fmt: skip
    table = st.stats(df, "weight")
    assert st.pm_stats(st.stats_cell(table, 0.9)) == "96.00 ± 1.41"
    assert st.pm_stats(st.stats_cell(table, 0.5)) == "98.00"
    assert st.pm_stats(st.stats_cell(table, 0.7)) == "—"


def test_paired_is_a_two_sided_paired_t_test():
    # differences 1, 2, 3 points: t = 2 / (1 / √3) = 3.46, p(|t_2| > 3.46) = 0.0742
    assert st.paired([0.01, 0.02, 0.03]) == "+2.00 ± 1.00 (t = 3.5, p = 0.074, 3/3)"
    assert st.paired([-0.01, -0.01]) == "-1.00 ± 0.00 (2/2)"
    assert st.paired([0.01]) == "–"
    # I_x(a, b) against closed forms: I_x(1, 1) = x, I_x(a, 1) = x^a
    assert st.betainc(1, 1, 0.3) == pytest.approx(0.3)
    assert st.betainc(2.5, 1, 0.4) == pytest.approx(0.4**2.5)


def test_interpolation_is_linear_in_minus_log_of_the_density():
    xs, ys = np.array([0.9, 0.99]), np.array([0.9, 0.8])
    assert st.interp_on_log_scale(0.9, xs, ys) == pytest.approx(0.9)
    # 1 − k = 10^-1.5 is halfway between 10^-1 and 10^-2 on that scale
    assert st.interp_on_log_scale(1 - 10**-1.5, xs, ys) == pytest.approx(0.85)


def test_an_arm_is_found_in_the_first_root_then_under_its_former_name(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (b / "lenet5_rigl_40ep").mkdir(parents=True)
    (a / "rigl_40ep").mkdir(parents=True)
    assert st.arm_dir([a, b], "lenet5_rigl_40ep", "rigl_40ep") == a / "rigl_40ep"
    assert st.arm_dir([b, a], "lenet5_rigl_40ep", "rigl_40ep") == b / "lenet5_rigl_40ep"
    assert st.arm_dir([a], "nothing") is None and st.load(None).empty


def test_arms_run_in_several_numeric_settings_are_keyed_by_their_threads(tmp_path, monkeypatch):
    for name in ("two", "one", "unfinished"):
        (tmp_path / name).mkdir()
    frames = {"two": pd.DataFrame({"threads": [2, 2]}), "one": pd.DataFrame({"threads": [1]}),
              "unfinished": pd.DataFrame()}  # fmt: skip
    monkeypatch.setattr(
        st, "load", lambda folder: frames[folder.name] if folder else pd.DataFrame()
    )
    runs = st.by_threads([tmp_path], ["two", "one", "unfinished", "absent"])
    assert list(runs) == ["2 threads", "1 thread"] and runs["1 thread"] is frames["one"]


def test_a_summary_gets_the_cheaper_inference_s_flops(tmp_path):
    (tmp_path / "arm" / "report").mkdir(parents=True)
    pd.DataFrame({"flops/compact": [10, 3], "flops/sparse": [5, 4]}).to_csv(
        tmp_path / "arm" / "report" / "summary.csv", index=False
    )
    assert st.read_summary(tmp_path / "arm")["flops/best"].tolist() == [5, 3]
    assert st.read_summary(tmp_path / "none") is None


def tables_module(study: str):
    spec = importlib.util.spec_from_file_location(
        f"{study}_tables", ROOT / "studies" / study / "tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "study",
    sorted(p.parent.name for p in ROOT.glob("studies/*/tables.py") if "snip" not in str(p)),
)
def test_each_study_s_tables_say_in_one_line_that_a_folder_has_none_of_its_arms(
    study, tmp_path, capsys
):
    assert tables_module(study).main([str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: no finished arm of this study under {tmp_path}\n"


def test_the_first_round_s_tables_from_made_up_summaries(tmp_path, capsys):
    """Two seeds of the one-shot arm: the accuracy table, magnitude against random, equal cost
    and the targets, each cell formatted as the committed tables are."""
    rows = []
    for seed in (0, 1):
        for strategy in ("weight", "neuron", "random_weight", "random_neuron"):
            for k in (0.0, 0.5, 0.9):
                acc = 0.98 - (0.2 if "random" in strategy else 0.02) * k + 0.002 * seed
                rows.append({"strategy": strategy, "sparsity": k, "seed": seed, "test_acc": acc,
                             "sparsity/effective": k if strategy == "weight" else 1 - (1 - k)**2,
                             "flops/compact": 100 * (1 - k), "flops/sparse": 100,
                             "flops/dense": 100, "wall_time_s": 60})  # fmt: skip
    (tmp_path / "oneshot" / "report").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "oneshot" / "report" / "summary.csv", index=False)
    assert tables_module("weight_vs_unit").main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| k % | weight, one-shot | unit, one-shot |" in out
    assert "| 90 | 96.30 ± 0.14 | 96.30 ± 0.14 |" in out
    assert "| 90 | 96.30 ± 0.14 | 80.10 ± 0.14 | +16.20 |" in out
    assert "| weight k = 90 %, one-shot, no fine-tune | ≥ 96 | 96.30 ± 0.14 | met |" in out
    assert "Seeds: [0, 1]. Sum of job wall times (min): oneshot 24.0." in out
