"""``trainfree export``: the exported models are the searched ones.

For every space, small configs go through the Hugging Face export and are loaded back with
``transformers``' Auto classes: same log-probabilities / hidden states as trainfree's model
(max abs diff <= 1e-5, float32), same parameter count as ``param_counts``, and a
``save_pretrained``/``from_pretrained`` round trip that changes nothing. The folder also
loads with ``trust_remote_code`` in a process where trainfree cannot be imported; ONNX
exports run in ONNX Runtime with other batch and sequence sizes than traced.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

import transformers
from typer.testing import CliRunner

from trainfree import cli
from trainfree.errors import TrainfreeError
from trainfree.export import export_config, export_run
from trainfree.export.onnx_export import example_ids
from trainfree.spaces import get_space

ATOL = 1e-5
LTS_SMALL = dict(n_layer=[1, 2], d_model=[64, 128], d_inner=[128, 256], n_head=[2, 4], d_embed=[-1, 32])
SPACES = {
    "gpt2": dict(LTS_SMALL, n_token=[1000], cutoffs=[[200, 500, 1000]], tgt_len=[32], div_val=[1, 2]),
    "transxl": dict(LTS_SMALL, n_token=[1000], cutoffs=[[200, 500, 1000]], tgt_len=[32], mem_len=[32]),
    "flexibert": dict(hidden_size=[64], n_layer=[1, 2], num_heads=[2], ffn_dim=[64, 96]),
    "flexibert-published": dict(hidden_size=[64, 128], n_layer=[1, 2], num_heads=[2, 4], ffn_dim=[64]),
}
AUTO = {"gpt2": "AutoModelForCausalLM", "transxl": "AutoModelForCausalLM"}


def small(name: str, seed: int):
    space = get_space(name, **SPACES[name])
    return space, space.sample(np.random.default_rng(seed))


def output(model, ids: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (causal LMs) or the last hidden state (encoders)."""
    with torch.no_grad():
        out = model(ids)
    return out.logits if hasattr(out, "logits") and out.logits.dim() == 3 else out.last_hidden_state


@pytest.mark.parametrize("name", list(SPACES))
@pytest.mark.parametrize("seed", [0, 1])
def test_exported_model_is_the_searched_one(name, seed, tmp_path):
    space, cfg = small(name, seed)
    export_config(space, cfg, tmp_path / "m", seed=seed)
    reference = space.build(cfg, seed=seed).eval()
    ids = example_ids(space, cfg, 3, 12, seed=5)
    with torch.no_grad():
        expected = space.inference(reference, ids)
    auto = getattr(transformers, AUTO.get(name, "AutoModel"))
    model = auto.from_pretrained(tmp_path / "m").eval()
    diff = float((output(model, ids) - expected).abs().max())
    print(f"{name} seed {seed}: max abs diff {diff:.1e}")
    assert diff <= ATOL
    assert model.num_parameters() == space.param_counts(cfg).total
    # round trip through save_pretrained / from_pretrained
    model.save_pretrained(tmp_path / "again")
    again = auto.from_pretrained(tmp_path / "again").eval()
    assert torch.equal(output(again, ids), output(model, ids))
    assert (tmp_path / "again" / "modeling_trainfree.py").exists()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["trainfree_config"] == space.config_to_dict(cfg)
    assert config["trainfree_space"] == name and config["tie_word_embeddings"] is True


def test_lts_loss_and_generation(tmp_path):
    space, cfg = small("transxl", 2)
    export_config(space, cfg, tmp_path / "m")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    ids = example_ids(space, cfg, 2, 10, seed=1)
    logp = output(model, ids)
    labels = ids.clone()
    labels[0, 4] = -100  # ignored position
    with torch.no_grad():
        loss = model(ids, labels=labels).loss
    nll = -logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    keep = labels[:, 1:] != -100
    assert torch.allclose(loss, nll[keep].mean(), atol=1e-6)
    assert model.generate(ids[:, :3], max_new_tokens=4, do_sample=False).shape == (2, 7)
    assert json.loads((tmp_path / "m" / "generation_config.json").read_text())["max_length"] == cfg.tgt_len


def test_flexibert_heads(tmp_path):
    space, cfg = small("flexibert", 3)
    export_config(space, cfg, tmp_path / "m")
    ids = example_ids(space, cfg, 2, 8, seed=1)
    encoder = output(transformers.AutoModel.from_pretrained(tmp_path / "m").eval(), ids)
    mlm = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(mlm.encode(ids)[0], encoder)
    assert mlm.lm_head.decoder.weight is mlm.flexibert.embedding.word_embeddings.weight  # tied
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    assert torch.isfinite(mlm(ids, labels=labels).loss)
    clf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "m", num_labels=3)
    out = clf.eval()(ids, labels=torch.tensor([0, 2]))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.loss)


REMOTE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class NoTrainfree(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "trainfree":
                raise ModuleNotFoundError(f"No module named {name!r}")

    sys.meta_path.insert(0, NoTrainfree())
    try:
        import trainfree
        sys.exit("trainfree is importable")
    except ModuleNotFoundError:
        pass
    import torch, transformers
    jobs = json.loads(sys.argv[1])
    for folder, auto, ids_path, out_path in jobs:
        model = getattr(transformers, auto).from_pretrained(folder, trust_remote_code=True).eval()
        ids = torch.load(ids_path)
        with torch.no_grad():
            out = model(ids)
        torch.save(out.logits if auto.endswith("CausalLM") else out.last_hidden_state, out_path)
        model.save_pretrained(folder + "-resaved")  # transformers copies the remote code
        getattr(transformers, auto).from_pretrained(folder + "-resaved", trust_remote_code=True)
        print(type(model).__module__, model.num_parameters())
    assert not [m for m in sys.modules if m.split(".")[0] == "trainfree"]
    """
)


def test_folder_loads_without_trainfree(tmp_path):
    jobs, expected = [], []
    for name in ("gpt2", "transxl", "flexibert"):
        space, cfg = small(name, 4)
        folder = tmp_path / name
        export_config(space, cfg, folder)
        ids = example_ids(space, cfg, 2, 9, seed=2)
        torch.save(ids, tmp_path / f"{name}.ids")
        with torch.no_grad():
            expected.append((space.inference(space.build(cfg).eval(), ids), space.param_counts(cfg).total))
        auto = AUTO.get(name, "AutoModel")
        jobs.append([str(folder), auto, str(tmp_path / f"{name}.ids"), str(tmp_path / f"{name}.out")])
    env = {"HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", REMOTE, json.dumps(jobs)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split("\n")
    for (_, _, _, out_path), (ref, params), line in zip(jobs, expected, lines, strict=False):
        assert "transformers_modules" in line and line.endswith(str(params))  # the folder's own code
        diff = float((torch.load(out_path) - ref).abs().max())
        print(f"remote code, {Path(out_path).stem}: max abs diff {diff:.1e}")
        assert diff <= ATOL


def test_stock_gpt2(tmp_path):
    space = get_space("gpt2", n_layer=[2], d_model=[64], d_inner=[128], n_head=[4], d_embed=[-1], div_val=[1])
    space = get_space(
        "gpt2", **{**{k: list(v) for k, v in space.values.items()}, "n_token": [500], "cutoffs": [[500]]}
    )
    cfg = space.sample(np.random.default_rng(0))
    result = export_config(space, cfg, tmp_path / "stock", as_="gpt2")
    model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "stock").eval()
    assert json.loads((tmp_path / "stock" / "config.json").read_text())["model_type"] == "gpt2"
    ids = space.example_input(cfg, 2, 20, seed=3)
    with torch.no_grad():
        expected = space.inference(space.build(cfg).eval(), ids)
        got = torch.log_softmax(model(ids).logits, -1)
    assert float((got - expected).abs().max()) <= ATOL
    assert result.params == space.param_counts(cfg).total + 500 * 64 - 500  # untied lm_head, no bias
    hetero, hcfg = small("gpt2", 0)
    with pytest.raises(TrainfreeError, match="--as gpt2 needs a homogeneous GPT-2"):
        export_config(hetero, hcfg, tmp_path / "no", as_="gpt2")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("name, seed", [("gpt2", 1), ("transxl", 0), ("flexibert", 0)])
def test_onnx_has_dynamic_axes(name, seed, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    space, cfg = small(name, seed)
    if name == "flexibert":  # the FFT and unfold mixers, the hard part of the exporter
        layer = {"num_heads": 2, "ffn_dim": 64, "num_ff": 1}
        cfg = space.config_from_dict(
            {
                "hidden_size": 64,
                "max_position": 64,
                "layers": [
                    {"operation_type": "LT", "operation_parameter": "DCT", **layer},
                    {"operation_type": "DSC", "operation_parameter": 5, **layer},
                    {"operation_type": "LT", "operation_parameter": "DFT", **layer},
                ],
            }
        )
    result = export_config(space, cfg, tmp_path / "onnx", fmt="onnx")
    assert sorted(result.files) == ["model.onnx", "trainfree.json"]
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    ids = example_ids(space, cfg, 4, 5, seed=9)
    with torch.no_grad():
        expected = space.inference(space.build(cfg).eval(), ids).numpy()
    got = session.run(None, {"input_ids": ids.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4


def test_trainer_loss_falls(tmp_path):
    """20 steps of transformers.Trainer on a tiny generated corpus (a noisy cyclic sequence)."""
    from torch.utils.data import Dataset

    space, cfg = small("gpt2", 5)
    export_config(space, cfg, tmp_path / "m")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    gen = torch.Generator().manual_seed(0)
    starts = torch.randint(0, 1000, (64, 1), generator=gen)
    corpus = (starts + 7 * torch.arange(24)) % 1000  # next token = previous + 7

    class Corpus(Dataset):
        def __len__(self) -> int:
            return len(corpus)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": corpus[i], "labels": corpus[i]}

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "train"),
        max_steps=20,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Corpus())
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print("loss curve:", " ".join(f"{x:.3f}" for x in losses))
    assert len(losses) == 20
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


# ------------------------------------------------------------------ runs and bad input
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real (tiny) search run: its frontier configs are what users export."""
    from search_toys import search_settings
    from trainfree.search import SearchRun

    out = tmp_path_factory.mktemp("search") / "run"
    settings = search_settings(dict(SPACES["gpt2"]), budget="8", pop_size=4, seed=3)
    run = SearchRun.open(out, settings)
    run.run()
    run.close()
    return out


def test_export_whole_frontier(run_dir, tmp_path):
    frontier = json.loads((run_dir / "frontier.json").read_text())["models"]
    results = export_run(run_dir, "all", tmp_path / "all")
    assert len(results) == len(frontier) >= 1
    space = get_space("gpt2", **SPACES["gpt2"])
    for row, result in zip(frontier, results, strict=True):
        assert result.out.name == Path(row["config_file"]).stem and result.max_abs_diff <= ATOL
        assert result.params == row["params"]
        record = json.loads((result.out / "trainfree.json").read_text())
        assert record["seed"] == 3 and record["frontier_rank"] == row["rank"]
        cfg = space.config_from_dict(json.loads((run_dir / row["config_file"]).read_text())["config"])
        assert record["config"] == space.config_to_dict(cfg)
        # the card and record travel with the model: no absolute path of this machine in them
        card = (result.out / "README.md").read_text()
        assert record["run"] == run_dir.name and f"`{run_dir.name}`" in card
        assert str(tmp_path) not in card + json.dumps(record) and str(run_dir.parent) not in card


def _cli(*args: str):
    return CliRunner().invoke(cli.app, ["export", *args])


def test_cli_export_and_bad_input(run_dir, tmp_path):
    space, cfg = small("gpt2", 0)
    bare = tmp_path / "bare.json"
    bare.write_text(space.config_to_json(cfg))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"space": "gpt2", "config": space.config_to_dict(cfg)}))
    ok = _cli("--config", str(wrapped), "--out", str(tmp_path / "a"))
    assert ok.exit_code == 0, ok.output
    assert "trainfree-gpt2" in ok.output and (tmp_path / "a" / "model.safetensors").exists()
    assert (
        _cli("--space", "gpt2", "--run", str(run_dir), "--pick", "0", "--out", str(tmp_path / "r")).exit_code
        == 0
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["--space", "flexibert", "--config", str(bare)], "config of space 'gpt2', not 'flexibert'"),
        (["--space", "transxl", "--config", str(wrapped)], "config of space 'gpt2', not 'transxl'"),
        (["--run", str(tmp_path)], "--run needs --pick"),
        (["--run", str(tmp_path), "--pick", "0"], "not a search run"),
        (["--run", str(run_dir), "--pick", "99"], "--pick 99 is out of range"),
        (["--run", str(run_dir), "--pick", "x"], "expected a frontier row number or 'all'"),
        (["--space", "gpt2", "--config", str(bare), "--format", "tflite"], "--format 'tflite'"),
    ]
    for args, message in cases:
        result = _cli(*args, "--out", str(tmp_path / "bad"))
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output
    no_frontier = tmp_path / "nofrontier"
    no_frontier.mkdir()
    (no_frontier / "settings.json").write_text((run_dir / "settings.json").read_text())
    result = _cli("--run", str(no_frontier), "--pick", "0", "--out", str(tmp_path / "bad"))
    assert result.exit_code == 2 and "has no frontier" in " ".join(result.output.split())
    # a non-empty folder is refused, and kept as it was; --force replaces it
    (tmp_path / "a" / "note.txt").write_text("mine")
    refused = _cli("--space", "gpt2", "--config", str(bare), "--out", str(tmp_path / "a"))
    assert refused.exit_code == 2 and "not empty" in refused.output
    assert (tmp_path / "a" / "note.txt").exists()
    forced = _cli("--space", "gpt2", "--config", str(bare), "--out", str(tmp_path / "a"), "--force")
    assert forced.exit_code == 0 and not (tmp_path / "a" / "note.txt").exists()
    # nothing half-written: no stray temporary folders, no "bad" output
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == sorted([*before, "nofrontier"]), after
