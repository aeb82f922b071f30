"""``perceptrons ctr train|evaluate|predict``: end to end in a subprocess, errors in-process."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perceptrons.cli.main import main
from perceptrons.ctr import SyntheticCTRConfig, SyntheticCTRTask
from perceptrons.ctr.metrics import auc

MODEL_FILES = {
    "ctr.json",
    "encoder.json.gz",
    "model.json",
    "model.safetensors",
    "train_config.json",
}
# small, learnable: few fields of low cardinality
TASK = SyntheticCTRTask(
    SyntheticCTRConfig(
        num_user_fields=4,
        num_scene_fields=2,
        num_ad_fields=3,
        num_multi_fields=1,
        max_cardinality=40,
        first_order_std=1.5,
        base_rate=0.25,
        calibration_rows=4000,
    )
)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "perceptrons", "ctr", *map(str, args)],
        capture_output=True,
        text=True,
        # one thread: small models, and no slowdown when other processes hold the cores
        env={**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["ctr", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def last_line_error(err: str) -> str:
    """The error line ends stderr (train may print the schema inference report first)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert [i for i, line in enumerate(lines) if "error" in line] == [len(lines) - 1], err
    return lines[-1]


def labels_of(path: Path, fmt: str) -> list[float]:
    with open(path) as handle:
        if fmt == "table":
            return [float(r["label"]) for r in csv.DictReader(handle)]
        out = []
        for line in handle:
            t = [v for v in line.split("\t")[1:4] if v != "-"]
            out.append(float(t[0]))
        return out


def read_predictions(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def with_bad_line(src: Path, dst: Path, line: int, text: str) -> None:
    lines = src.read_text().splitlines(keepends=True)
    lines[line - 1] = text
    dst.write_text("".join(lines))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctr_data")
    train, test = TASK.sample(3000, seed=1), TASK.sample(800, seed=2)
    train.write(d / "train.cvr", "cvr")
    test.write(d / "test.cvr", "cvr")
    train.write(d / "train.csv", "table")
    test.write(d / "test.csv", "table")
    return d


@pytest.fixture(scope="module")
def lr_cvr(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "lr"
    proc = cli(
        "train", "--train", files / "train.cvr", "--valid", files / "test.cvr",
        "--format", "cvr", "--model", "lr", "--epochs", "4", "--batch-size", "128",
        "--lr", "0.05", "--out", out,
    )  # fmt: skip
    return proc, out


@pytest.fixture(scope="module")
def emofm_table(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "emofm"
    proc = cli(
        "train", "--train", files / "train.csv", "--format", "table", "--type-column", "type",
        "--model", "emofm", "--epochs", "2", "--batch-size", "256", "--lr", "0.005",
        "--out", out,
    )  # fmt: skip
    return proc, out


def test_train_cvr_lr_prints_one_json_line_and_writes_a_complete_folder(lr_cvr):
    proc, out = lr_cvr
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    metrics = json.loads(lines[0])
    assert metrics["split"] == "valid" and metrics["rows"] == 800
    assert metrics["train_rows"] == 3000
    assert metrics["auc"] > 0.6
    assert {"logloss", "pcoc", "auc_type_0", "auc_type_1", "auc_type_2"} <= set(metrics)
    assert {p.name for p in out.iterdir()} == MODEL_FILES


def test_copied_model_dir_evaluates_and_predicts_in_input_order(lr_cvr, files, tmp_path):
    _, trained = lr_cvr
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(trained, copy)
    proc = cli("evaluate", "--model-dir", copy, "--data", files / "test.cvr")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["rows"] == 800 and "skipped" not in metrics
    assert {"auc", "logloss", "pcoc"} <= set(metrics)

    pred = tmp_path / "pred.csv"
    proc = cli("predict", "--model-dir", copy, "--data", files / "test.cvr", "--out", pred)
    assert proc.returncode == 0, proc.stderr
    rows = read_predictions(pred)
    assert [int(r["line"]) for r in rows] == list(range(1, 801))
    assert [r["log_id"] for r in rows] == [str(i) for i in range(800)]
    probs = [float(r["probability"]) for r in rows]
    assert all(0 < p < 1 for p in probs)
    assert auc(labels_of(files / "test.cvr", "cvr"), probs) == pytest.approx(
        metrics["auc"], abs=1e-12
    )
    # the train command's validation AUC is the same computation
    assert json.loads(lr_cvr[0].stdout)["auc"] == pytest.approx(metrics["auc"], abs=1e-12)
    assert list(tmp_path.glob(".*tmp")) == []


def test_table_emofm_reports_inference_and_predicts_unlabelled_rows(emofm_table, files, capsys):
    proc, out = emofm_table
    assert proc.returncode == 0, proc.stderr
    assert "schema of" in proc.stderr and "f1" in proc.stderr  # the inference report
    metrics = json.loads(proc.stdout.strip())
    assert metrics["split"] == "holdout" and metrics["rows"] == 300
    assert metrics["model"] == "emofm" and "auc_type_0" in metrics
    assert {p.name for p in out.iterdir()} == MODEL_FILES
    # a file without the label column, with unseen categories in every row
    src = (files / "test.csv").read_text().splitlines()
    header = src[0].split(",")
    lines = [",".join(header[1:])]
    for i, line in enumerate(src[1:]):
        cells = line.split(",")[1:]
        cells[1] = f"unseen{i}"  # f1
        lines.append(",".join(cells))
    data = files / "unlabelled.csv"
    data.write_text("\n".join(lines) + "\n")
    pred = files / "emofm_pred.csv"
    code, _, err = run(capsys, "predict", "--model-dir", out, "--data", data, "--out", pred)
    assert code == 0, err
    rows = read_predictions(pred)
    assert [int(r["line"]) for r in rows] == list(range(2, 802))
    assert all(0 < float(r["probability"]) < 1 for r in rows)


def test_malformed_row_exits_1_naming_file_and_line_and_writes_nothing(
    lr_cvr, files, tmp_path, capsys
):
    _, model = lr_cvr
    bad = tmp_path / "bad.cvr"
    with_bad_line(files / "test.cvr", bad, 7, "6\t1\t-\t-\t123:1 oops\n")
    pred = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", "--model-dir", model, "--data", bad, "--out", pred)
    assert code == 1 and out == ""
    line = one_line_error(err)
    assert f"{bad}: line 7, column 5 (sample_info)" in line
    assert not pred.exists() and list(tmp_path.iterdir()) == [bad]

    code, out, err = run(capsys, "evaluate", "--model-dir", model, "--data", bad)
    assert code == 1 and out == ""
    assert f"{bad}: line 7" in one_line_error(err)

    dest = tmp_path / "model"
    code, out, err = run(
        capsys, "train", "--train", bad, "--format", "cvr", "--model", "lr", "--out", dest
    )
    assert code == 1 and f"{bad}: line 7" in last_line_error(err)
    assert list(tmp_path.iterdir()) == [bad]  # no folder, no temporary folder


def test_skip_bad_rows_counts_them(lr_cvr, files, tmp_path, capsys):
    _, model = lr_cvr
    bad = tmp_path / "bad.cvr"
    with_bad_line(files / "test.cvr", bad, 7, "6\t1\t-\t-\t123:1 oops\n")
    code, out, err = run(capsys, "evaluate", "--model-dir", model, "--data", bad, "--skip-bad-rows")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["skipped"] == 1 and metrics["rows"] == 799
    pred = tmp_path / "pred.csv"
    code, out, err = run(
        capsys, "predict", "--model-dir", model, "--data", bad, "--out", pred, "--skip-bad-rows"
    )
    assert code == 0
    assert "1 malformed rows skipped" in err and "line 7" in err
    lines = [int(r["line"]) for r in read_predictions(pred)]
    assert len(lines) == 799 and 7 not in lines and lines[6] == 8


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--model", "nope"), "--model 'nope': not a CTR model (valid: autoint"),
        (("--model", "mlp"), "not a CTR model"),
        (("--model", "lr", "--out-parent-missing"), "does not exist"),
        (("--model", "lr", "--label", "x"), "label: is not used by format 'cvr'"),
        (("--model", "lr", "--epochs", "0"), "expected an integer >= 1"),
    ],
)
def test_train_usage_errors_exit_2(files, tmp_path, capsys, args, expected):
    out = tmp_path / "model"
    if "--out-parent-missing" in args:
        args, out = args[:2], tmp_path / "missing" / "model"
    code, stdout, err = run(
        capsys, "train", "--train", files / "train.cvr", "--format", "cvr", *args, "--out", out
    )
    assert code == 2 and stdout == ""
    assert expected in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_of_evaluate_and_predict_exit_2(lr_cvr, files, tmp_path, capsys):
    _, model = lr_cvr
    test = files / "test.cvr"
    cases = [
        (("evaluate", "--model-dir", model, "--data", tmp_path / "no.cvr"), "no such file"),
        (("evaluate", "--model-dir", tmp_path, "--data", test), "ctr.json is missing"),
        (
            ("predict", "--model-dir", model, "--data", test, "--out", tmp_path / "x" / "p.csv"),
            "does not exist",
        ),
    ]
    partial = tmp_path / "partial"
    shutil.copytree(model, partial)
    (partial / "model.safetensors").unlink()
    cases.append((("evaluate", "--model-dir", partial, "--data", test), "model.safetensors"))
    for args, expected in cases:
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "", args
        assert expected in one_line_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial"]


def test_single_class_validation_keeps_the_model_with_auc_null(files, tmp_path, capsys):
    """Training succeeded, so its folder is written even when validation AUC is undefined;
    `evaluate` on the same single-class file is still an error (there is nothing to report)."""
    lines = (files / "test.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:40]
    label = header.split(",").index("label")
    zeros = [",".join("0" if i == label else v for i, v in enumerate(r.split(","))) for r in rows]
    valid = tmp_path / "zeros.csv"
    valid.write_text("\n".join([header, *zeros]) + "\n")
    out = tmp_path / "model"
    code, stdout, err = run(
        capsys, "train", "--train", files / "train.csv", "--valid", valid, "--format", "table",
        "--type-column", "type", "--model", "lr", "--epochs", "1", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads(stdout)
    assert metrics["auc"] is None and metrics["rows"] == 39 and "both classes" in metrics["warning"]
    assert "warning" in err and (out / "model.safetensors").exists()
    code, _, err = run(capsys, "evaluate", "--model-dir", out, "--data", valid)
    assert code == 1 and "AUC needs both classes" in err


def report_or_progress_free(err: str) -> bool:
    """Whether stderr holds nothing but the schema inference report."""
    return all(line.startswith(("perceptrons: schema of", "  ")) for line in err.splitlines())


def test_set_config_and_quiet(files, tmp_path, capsys):
    first = tmp_path / "first"
    code, out, err = run(
        capsys, "train", "--train", files / "train.cvr", "--valid", files / "test.cvr",
        "--format", "cvr", "--model", "dnn", "--batch-size", "256", "--quiet",
        "--set", "model.embed_dim=4", "--set", "model.hidden_features=8,4",
        "--set", "fit.max_epochs=1", "--set", "fit.optimizer.name=adam", "--set", "eval_every=5",
        "--out", first,
    )  # fmt: skip
    assert code == 0, err
    assert report_or_progress_free(err), err
    metrics = json.loads(out)
    assert metrics["model"] == "dnn" and metrics["steps"] == 12
    saved = json.loads((first / "train_config.json").read_text())["params"]
    assert saved["model_name"] == "dnn" and saved["batch_size"] == 256
    assert saved["model"]["params"]["embed_dim"] == 4
    assert saved["model"]["params"]["hidden_features"] == [8, 4]
    assert saved["fit"]["params"]["max_epochs"] == 1 and saved["eval_every"] == 5
    assert saved["fit"]["params"]["optimizer"]["params"]["name"] == "adam"
    assert saved["model"]["params"]["features"]["params"]["num_types"] == 3  # the data's

    # the saved config again, with a flag and a --set on top: only those change
    second = tmp_path / "second"
    code, out, err = run(
        capsys, "train", "--config", first / "train_config.json", "--seed", "3",
        "--set", "model.embed_dim=6", "--quiet", "--out", second,
    )  # fmt: skip
    assert code == 0, err
    again = json.loads((second / "train_config.json").read_text())["params"]
    assert again["seed"] == 3 and again["fit"]["params"]["seed"] == 3
    assert again["model"]["params"]["embed_dim"] == 6
    for key in ("seed", "fit", "model"):
        saved.pop(key), again.pop(key)
    assert again == saved
    # --model with another model starts from that model's defaults
    third = tmp_path / "third"
    code, out, err = run(
        capsys, "train", "--config", first / "train_config.json", "--model", "lr", "--quiet",
        "--out", third,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((third / "train_config.json").read_text())["params"]["model_name"] == "lr"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--set", "nope=1"), "'nope=1': nope: unknown field of CTRTrainConfig; valid fields: "),
        (
            ("--set", "model.nope=1"),
            "model.nope: unknown field of LRConfig; valid fields: features, embed_dim, embed_std",
        ),
        (("--set", "fit.optimizer.nope=1"), "fit.optimizer.nope: unknown field of OptimizerCon"),
        (("--set", "batch_size=many"), "batch_size: expected int, got 'many'"),
        (("--set", "batch_size"), "expected FIELD=VALUE"),
        (("--set", "model.features=1"), "is a nested config"),
        (("--set", "fit.checkpoint_every=2"), "checkpoints need --run-dir DIR"),
        (("--config", "missing.json"), "--config missing.json: no such file"),
    ],
)
def test_set_and_config_usage_errors_exit_2(files, tmp_path, capsys, args, expected):
    out = tmp_path / "model"
    code, stdout, err = run(
        capsys, "train", "--train", files / "train.cvr", "--format", "cvr", "--model", "lr",
        *args, "--out", out,
    )  # fmt: skip
    assert code == 2 and stdout == ""
    assert expected in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_without_config_the_data_flags_are_required(files, tmp_path, capsys):
    code, _, err = run(capsys, "train", "--model", "lr", "--out", tmp_path / "m")
    assert code == 2
    assert "required: --train, --format (or --config FILE)" in one_line_error(err)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "CTRTrainConfig", "params": {"batch_size": "x"}}')
    code, _, err = run(capsys, "train", "--config", bad, "--out", tmp_path / "m")
    assert code == 2 and "batch_size: expected int" in one_line_error(err)


def test_run_dir_holds_the_log_and_resumable_checkpoints(files, tmp_path, capsys):
    args = (
        "train", "--train", files / "train.cvr", "--format", "cvr", "--model", "lr",
        "--epochs", "1", "--batch-size", "256", "--quiet", "--run-dir", tmp_path / "run",
        "--set", "fit.checkpoint_every=5", "--set", "eval_every=4",
    )  # fmt: skip
    code, out, err = run(capsys, *args, "--out", tmp_path / "a")
    assert code == 0, err
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert (
        sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())[-1] == "step_00000011"
    )
    assert any((tmp_path / "run" / "restore_best").iterdir())
    code, again, err = run(capsys, *args, "--out", tmp_path / "b")  # resumes the finished run
    assert code == 0, err
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
    assert strip(again) == strip(out)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
