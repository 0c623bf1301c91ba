"""The shipped "your own script" example: scenes/examples/charlm.py and train_charlm.py."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch.func import functional_call, vmap  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

EXAMPLES = ROOT / "scenes" / "examples"


@pytest.fixture(scope="module")
def charlm():
    # loaded by file path, under its own name: nothing added to sys.path for other tests
    spec = importlib.util.spec_from_file_location("charlm_example_under_test", EXAMPLES / "charlm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_text_windows_and_targets(charlm):
    x, y, vocab = charlm.text(context=16, samples=100, seed=3)
    assert x.shape == y.shape == (100, 16)
    assert x.dtype == y.dtype == torch.int64
    assert isinstance(vocab, int) and vocab == len(charlm.vocabulary()) and 30 < vocab < 100
    assert int(x.min()) >= 0 and int(max(x.max(), y.max())) < vocab
    assert torch.equal(y[:, :-1], x[:, 1:])                 # y is x shifted one character on
    # the windows are real text: decoding x and appending y's last char is a substring of the file
    chars = charlm.vocabulary()
    full = (EXAMPLES / charlm.TEXT).read_text(encoding="utf-8")
    for i in range(5):
        window = "".join(chars[j] for j in x[i].tolist()) + chars[int(y[i, -1])]
        assert window in full


def test_text_is_deterministic_in_its_seed(charlm):
    a, b = charlm.text(seed=0), charlm.text(seed=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(a[0], charlm.text(seed=1)[0])
    x, _, _ = charlm.text()
    assert x.shape == (2048, 32)                            # the defaults the script and scene share


def test_model_shape_and_size(charlm):
    x, _, vocab = charlm.text(samples=8)
    torch.manual_seed(0)
    net = charlm.model(input_shape=(32,), classes=vocab)
    assert 20_000 < sum(p.numel() for p in net.parameters()) < 70_000
    assert net(x).shape == (8, 32, vocab)
    assert net(x[:, :10]).shape == (8, 10, vocab)           # shorter than the context works too
    with pytest.raises(ValueError):
        charlm.model(input_shape=(1, 32), classes=vocab)


def test_model_is_causal(charlm):
    x, _, vocab = charlm.text(samples=4)
    torch.manual_seed(0)
    net = charlm.model(input_shape=(32,), classes=vocab).eval()
    changed = x.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % vocab         # change only the later characters
    with torch.no_grad():
        assert torch.allclose(net(x)[:, :20], net(changed)[:, :20], atol=1e-6)


def test_model_evaluates_under_vmap_like_a_loop(charlm):
    """What the studio does: many weight settings p + a * d at once, with vmap(functional_call)."""
    x, _, vocab = charlm.text(samples=16)
    torch.manual_seed(0)
    net = charlm.model(input_shape=(32,), classes=vocab).eval()
    params = {k: v.detach() for k, v in net.named_parameters()}
    g = torch.Generator().manual_seed(1)
    d = {k: 0.1 * torch.randn(v.shape, generator=g) for k, v in params.items()}

    def logits(a):
        return functional_call(net, {k: p + a * d[k] for k, p in params.items()}, (x,))

    a = torch.linspace(-1.0, 1.0, 8)
    with torch.no_grad():
        batched = vmap(logits)(a)
        looped = torch.stack([logits(v) for v in a])
    assert batched.shape == (8, 16, 32, vocab)
    assert torch.allclose(batched, looped, atol=1e-5)


@pytest.mark.slow
def test_training_script_writes_a_run_folder(tmp_path):
    pytest.importorskip("compute.run.recorder")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "train_charlm.py"), "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sample:" in proc.stdout
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert doc["closed"] is True
    steps = [s["step"] for s in doc["snapshots"]]
    assert steps[0] == 0 and steps[-1] == 40
    files = sorted(out.glob("step_*.pt"))
    assert len(files) == len(steps) >= 10
    losses = [s["loss"] for s in doc["snapshots"]]
    assert all(v is not None for v in losses) and losses[-1] < losses[0]
    state = torch.load(files[-1], weights_only=True)
    assert state["tok.weight"].shape[1] == 16               # the --tiny model's width
