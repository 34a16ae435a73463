"""CUDA paths: mixed precision with gradient scaling, channels-last, pinned-memory loader workers,
compiled training. Skipped without a GPU (the same code paths run on CPU in test_data.py)."""
import pytest
import torch

from romenas.search.loop import search
from romenas.train import train

from conftest import make_folder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_search_on_cuda_with_mixed_precision_and_workers(tmp_path, precision):
    folder = make_folder(tmp_path / "f", 96, size=(16, 16))
    result = search(out=tmp_path / "run", dataset=str(folder), space="nb201", channels=4, layers=1, samples=2,
                    epochs=2, batch_size=16, workers=2, precision=precision, channels_last=True, device="cuda",
                    progress=False)
    assert len(result.metrics) == 2 and all(m["train_loss"] == m["train_loss"] for m in result.metrics)


def test_compiled_bf16_training_on_cuda(tmp_path):
    result = train("NB201_OPTIMUM", out=tmp_path / "t", dataset="digits", limit_train=256, limit_test=64, epochs=1,
                   channels=8, layers=1, batch_size=32, precision="bf16-mixed", channels_last=True, compile=True,
                   device="cuda", progress=False)
    assert 0 <= result.test_acc <= 100
