"""From a trained run to use: safetensors, predict, evaluate, export, model card, fine-tuning."""
import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from romenas.cli import main
from romenas.inference import TrainedModel
from romenas.spaces import network_for
from romenas.train import describe, initialise_from, lent_settings, train

TINY = dict(epochs=2, channels=4, layers=1, batch_size=16, progress=False, device="cpu")


def digit_folder(root, classes=(0, 1, 2), size=16, per_class=(24, 8)):
    """The scikit-learn digits as grayscale PNG files of size x size, train/ and test/ (a new user's folder)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for split, count in zip(("train", "test"), per_class):
        for c in classes:
            folder = root / split / str(c)
            folder.mkdir(parents=True)
            picks = np.flatnonzero(d.target == c)[:sum(per_class)]
            picks = picks[:count] if split == "train" else picks[-count:]
            for i in picks:
                image = Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8), mode="L")
                image.resize((size, size)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    folder = digit_folder(root / "digits")
    result = train("NB201_OPTIMUM", out=root / "run", dataset=str(folder), **TINY)
    return root, folder, result


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_weights_are_safetensors_with_the_preprocessing(trained):
    from safetensors.torch import load_file

    root, _, result = trained
    weights = load_file(str(root / "run" / "model.safetensors"))  # no pickle involved
    model = TrainedModel.load(root / "run")
    assert weights.keys() == model.net.state_dict().keys()
    assert model.classes == ["0", "1", "2"] and model.input_shape == (3, 16, 16)
    assert all(torch.equal(weights[k], v) for k, v in model.net.state_dict().items())


def test_evaluate_agrees_with_training_and_with_predict(trained, capsys):
    """evaluate's top-1 on the test folder is training's final test accuracy (same preprocessing),
    and its confusion matrix counts exactly the images predict classifies right."""
    root, folder, result = trained
    code, out, err = _cli(["evaluate", root / "run", "--dataset", folder], capsys)
    assert code == 0, err
    [report_file] = (root / "run" / "evaluations").glob("digits-*.json")
    report = json.loads(report_file.read_text())
    assert report["top1"] == pytest.approx(result.test_acc, abs=1e-9) and "note" not in report
    assert report_file.with_name(report_file.stem + "-confusion.png").stat().st_size > 2000
    assert report["images"] == 24 and sum(map(sum, report["confusion"])) == 24
    assert report["top1"] <= report["top5"] == 100.0  # 3 classes: the top 3 always hold the truth
    assert "top-1" in out and "accuracy" in out
    images = sorted((folder / "test").rglob("*.png"))
    code, out, err = _cli(["predict", root / "run", *images, "--topk", "2", "--json"], capsys)
    assert code == 0, err
    predictions = json.loads(out)
    right = sum(p["top"][0]["class"] == path.parent.name for p, path in zip(predictions, images))
    assert right == sum(report["confusion"][c][c] for c in range(3))
    for p in predictions:
        probs = [t["probability"] for t in p["top"]]
        assert len(probs) == 2 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


def test_predict_handles_any_channels_and_size(trained, tmp_path, capsys):
    """A 3-channel network takes a grayscale image of another size, and a 1-channel (digits) network an RGB one."""
    root, _, _ = trained
    Image.new("L", (40, 30), 128).save(tmp_path / "grey.png")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "rgb.jpg")
    code, out, err = _cli(["predict", root / "run", tmp_path / "grey.png", tmp_path / "rgb.jpg", "--topk", "1"],
                          capsys)
    assert code == 0 and len(out.splitlines()) == 2, err
    digits = train("NB201_OPTIMUM", out=tmp_path / "digits-run", dataset="digits", limit_train=64, limit_test=32,
                   **{**TINY, "epochs": 1})
    assert TrainedModel.load(digits.run_dir).input_shape == (1, 8, 8)
    code, out, err = _cli(["predict", digits.run_dir, tmp_path / "rgb.jpg"], capsys)
    assert code == 0 and out.count(",") == 4, err  # five classes listed


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load is deprecated upstream
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_real_images(trained, tmp_path, fmt, capsys):
    root, folder, _ = trained
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="ONNX export needs the export extra")
        pytest.importorskip("onnxscript", reason="ONNX export needs the export extra")
    out = tmp_path / f"model.{fmt}"
    mine = tmp_path / f"model.{fmt}.tmp"  # a user's own file, named as romenas once named its temporary file
    mine.write_bytes(b"mine")
    code, text, err = _cli(["export", root / "run", "--format", fmt, "--out", out], capsys)
    assert mine.read_bytes() == b"mine"
    mine.unlink()
    assert code == 0, err
    assert "test images of" in text  # checked on the run's own test images
    model = TrainedModel.load(root / "run")
    transform = model.transform()
    images = torch.stack([transform(torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1))
                          for p in sorted((folder / "test").rglob("*.png"))[:5]])
    with torch.no_grad():
        expected = model.net(images)
    if fmt == "onnx":
        import onnx
        import onnxruntime

        onnx.checker.check_model(onnx.load(str(out)))
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape[0] == "batch"
        for batch in (images, images[:1]):  # the batch axis is dynamic
            got = torch.from_numpy(session.run(None, {"images": batch.numpy()})[0])
            assert (got - expected[:len(batch)]).abs().max() <= 1e-4
        meta = session.get_modelmeta().custom_metadata_map
    else:
        files = {f"romenas/{k}": "" for k in ("classes", "mean", "std", "input_shape", "genotype", "preprocessing")}
        got = torch.jit.load(str(out), _extra_files=files)(images)
        assert (got - expected).abs().max() <= 1e-4
        meta = {k.split("/")[1]: v.decode() if isinstance(v, bytes) else v for k, v in files.items()}
    # What a deployment needs travels in the file: classes, normalisation, input shape, genotype.
    assert json.loads(meta["classes"]) == model.classes and json.loads(meta["mean"]) == model.spec["mean"]
    assert json.loads(meta["std"]) == model.spec["std"] and json.loads(meta["input_shape"]) == [3, 16, 16]
    assert meta["genotype"] == model.genotype.to_string() and "(x - mean) / std" in meta["preprocessing"]
    assert "(x - mean) / std" in text and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("fault", ["full-disk", "interrupt"])
def test_an_export_that_cannot_finish_keeps_nothing_and_says_so(trained, tmp_path, monkeypatch, capsys, fault):
    """A full disk (torch.jit.save raises RuntimeError) is one line, exit 2; Ctrl-C says there is nothing
    to resume (no checkpoint talk); neither leaves a temporary file or a partial export behind."""
    root, _, _ = trained

    def failing(*args, **kwargs):
        if fault == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch.jit, "save", failing)
    out = tmp_path / "m.pt"
    code, _, err = _cli(["export", root / "run", "--format", "torchscript", "--out", out], capsys)
    if fault == "interrupt":
        assert code == 130 and "kept no partial output" in err and "checkpoint" not in err
    else:
        assert code == 2 and len(err.splitlines()) == 1 and "nothing was kept" in err
    assert list(tmp_path.iterdir()) == []


def test_export_names_the_extra_when_onnx_is_missing(trained, monkeypatch, capsys):
    root, _, _ = trained
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now fails as if not installed
    code, _, err = _cli(["export", root / "run", "--format", "onnx"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and '.[export]' in err


def test_evaluate_takes_built_in_data_says_which_split_and_keeps_every_report(trained, tmp_path, capsys):
    """--dataset digits is the built-in test split; a folder without test/ is evaluated on its train/
    images with a note; two folders of one name keep two reports."""
    import shutil

    root, folder, _ = trained
    code, out, err = _cli(["evaluate", root / "run", "--dataset", "digits"], capsys)
    assert code == 2 and "not trained on" in err  # digits has 10 classes, the run 3: refused by name
    only_train = tmp_path / "a" / "digits"
    shutil.copytree(folder / "train", only_train / "train")
    same_name = tmp_path / "b" / "digits"
    shutil.copytree(folder, same_name)
    code, out, _ = _cli(["evaluate", root / "run", "--dataset", only_train], capsys)
    assert code == 0 and "note: " in out and "has no test/ or val/ split" in out
    assert _cli(["evaluate", root / "run", "--dataset", same_name], capsys)[0] == 0
    assert len(list((root / "run" / "evaluations").glob("digits-*.json"))) >= 3  # folder, a/digits, b/digits


def test_model_card_written_and_shown(trained, capsys):
    root, _, result = trained
    card = (root / "run" / "MODEL_CARD.md").read_text()
    for needle in (result.genotype.to_string(), "Parameters:", "FLOPs per image", "Latency, batch 1",
                   "10th-90th percentile", "images/s", f"{result.test_acc:.2f} %", "epochs, batch 16",
                   "cells/cell.png", "- Cells per stage: "):
        assert needle in card, needle
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.safetensors", "MODEL_CARD.md"):  # one mode for the run's files: others may read them
        assert (root / "run" / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    train(resume=root / "run", progress=False)  # a finished run: nothing to do, its card stays as written
    assert (root / "run" / "MODEL_CARD.md").read_text() == card
    assert (root / "run" / "cells" / "cell.png").exists()
    code, out, _ = _cli(["show", root / "run"], capsys)
    assert code == 0 and "# Model card" in out


def test_fine_tune_keeps_the_body_and_replaces_the_head(trained, tmp_path, capsys):
    root, folder, _ = trained
    source = TrainedModel.load(root / "run")
    net = network_for(source.genotype, source.config, 5, 3)
    initialise_from(net, root / "run", source.genotype)
    mine, theirs = net.state_dict(), source.net.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in theirs.items() if not k.startswith("classifier"))
    assert mine["classifier.weight"].shape == (5, 16)
    five = digit_folder(tmp_path / "five", classes=(3, 4, 5, 6, 7))
    # The network's shape comes from the run it starts from (C=4, 1 cell per stage), as the tutorial does it.
    code, out, err = _cli(["train", "--init", root / "run", "--dataset", five, "--epochs", "1",
                           "--batch-size", "16", "--no-progress", "--out", tmp_path / "tuned"], capsys)
    assert code == 0, err
    tuned = TrainedModel.load(tmp_path / "tuned").config
    assert (tuned.channels, tuned.layers) == (4, 1)
    assert TrainedModel.load(tmp_path / "tuned").classes == ["3", "4", "5", "6", "7"]
    assert "fine-tuned from" in (tmp_path / "tuned" / "MODEL_CARD.md").read_text()


def test_a_run_folder_lends_its_data_and_network_to_what_starts_from_it(trained, tmp_path, capsys):
    """describe() and train --dry-run of a trained run describe the run's own network; a search run
    given as the genotype lends its dataset (training on the built-in digits by default would be wrong)."""
    root, folder, result = trained
    info = describe(root / "run")
    assert info["params"] == result.params and info["input"] == [3, 16, 16]
    code, out, _ = _cli(["train", root / "run", "--dry-run"], capsys)
    assert code == 0 and f"params: {result.params / 1e6:.3f}M" in out and "from the run folder" in out
    searched = tmp_path / "searched"
    searched.mkdir()
    (searched / "config.json").write_text(json.dumps({"kind": "search", "config": {"dataset": str(folder),
                                                                                 "channels": 8}}))
    (searched / "genotype.json").write_text(result.genotype.to_json())
    assert lent_settings(searched, "genotype", {}) == {"dataset": str(folder)}  # data, never the supernet's size
    assert lent_settings(searched, "genotype", {"dataset": "digits"}) == {}  # a flag wins
    assert describe(searched, channels=4, layers=1)["input"] == [3, 16, 16]


def test_bad_input_is_one_line_exit_2(trained, tmp_path, capsys):
    root, folder, _ = trained
    run = root / "run"
    other = digit_folder(tmp_path / "other", classes=(0, 1, 9))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "status.json"):
        (damaged / name).write_text((run / name).read_text())
    (damaged / "model.safetensors").write_bytes(b"\x00" * 64)
    cases = [
        (["predict", tmp_path / "nowhere", folder / "test" / "0"], "not a romenas run folder"),
        (["evaluate", run, "--dataset", other], "not trained on"),
        (["evaluate", run, "--dataset", tmp_path / "missing"], "does not exist"),
        (["predict", run, tmp_path / "bad.png"], "cannot read image"),
        (["predict", run, tmp_path / "bad.png", "--topk", "0"], "topk must be at least 1"),
        (["predict", damaged, tmp_path / "bad.png"], "damaged or not safetensors"),
        (["export", run, "--out", tmp_path / "no" / "dir" / "m.onnx"], "does not exist"),
        (["export", run, "--format", "torchscript", "--out", tmp_path / "bad.png"], "already exists"),
        (["train", "NB201_OPTIMUM", "--init", run, "--channels", "8", "--layers", "1", "--dataset", folder,
          "--batch-size", "16", "--no-progress", "--out", tmp_path / "x"], "another size"),
        (["train", "GDAS", "--init", run, "--dataset", folder, "--batch-size", "16", "--no-progress",
          "--out", tmp_path / "y"], "holds genotype"),
    ]
    for argv, needle in cases:
        code, _, err = _cli(argv, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, (argv, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert (tmp_path / "bad.png").read_bytes() == b"not an image"  # a user's file is never overwritten


@pytest.mark.parametrize("field, value, needle", [
    ("config", {"channels": "sixteen"}, "settings stored with the weights"),
    ("data", {"std": [0.0, 0.0, 0.0]}, "'std' must be 3 positive"),
    ("data", {"classes": 3}, "'classes' must be a list"),
    ("data", {"mean": [0.5]}, "'mean' must be 3 finite"),
    ("data", {"augment": "rotate"}, "'augment' must be one of"),
    ("config", {"stem": "mobile"}, "settings stored with the weights"),
    ("genotype", {"family": ["darts"]}, "unknown genotype family"),
    ("shape", None, "delete model.safetensors"),
])
def test_weights_metadata_is_untrusted_input(trained, tmp_path, capsys, field, value, needle):
    """Every field of the safetensors metadata is checked: one line naming the problem, never a traceback."""
    import shutil

    from safetensors.torch import load_file, save_file

    from romenas.weights import load_weights

    root, folder, _ = trained
    run = tmp_path / "run"
    shutil.copytree(root / "run", run, ignore=shutil.ignore_patterns("checkpoint.pt*"))
    state, metadata = load_weights(run / "model.safetensors")
    if field == "shape":
        key = next(k for k, v in state.items() if v.dim() == 4)
        state[key] = torch.zeros(1, *state[key].shape[1:])
    else:
        metadata[field] = {**metadata[field], **value}
    save_file(state, str(run / "model.safetensors"), metadata={k: json.dumps(v) for k, v in metadata.items()})
    assert load_file(str(run / "model.safetensors"))  # still a readable safetensors file
    code, _, err = _cli(["predict", run, *sorted((folder / "test").rglob("*.png"))[:1]], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
