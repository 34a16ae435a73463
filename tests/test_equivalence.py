"""romenas' GDAS and DARTS against the official code their published numbers came from.

The reference is xautodl 1.0.0 (``pip install --no-deps xautodl==1.0.0``, which .ci/run does),
the GDAS author's package: ``TinyNetworkGDAS``/``TinyNetworkDarts`` (NAS-Bench-201) and
``NASNetworkGDAS``/``NASNetworkDARTS`` (the DARTS space), and the search loop of
exps/NAS-Bench-201-algos/GDAS.py and DARTS-V1.py in D-X-Y/AutoDL-Projects
(tests/xautodl_reference.py). Both sides get the same weights (a state-dict mapping), the same
batches and the same Gumbel noise (romenas' draws, injected into xautodl's networks).

What romenas computes differently on purpose, and how each is handled here:
- 'none' where a real op runs on the edge (DARTS' mixed edges): romenas skips the term
  weight x 0; the forward/backward tests show the values and gradients are equal anyway.
- weights frozen in the architecture step: romenas computes no weight gradients there, xautodl
  computes and discards them; the five-step tests show the weights end equal.
- xautodl's convolutions in the cells carry a bias when ``affine`` is False (``bias=not affine``),
  each followed by a batch norm in training mode that removes it: romenas has none, and
  ``test_the_pre_bn_biases_xautodl_adds_change_nothing`` bounds their effect.
- xautodl clips the norm of ``network.parameters()``, alpha's leftover gradient included; romenas
  clips the weights' own norm. In the five-step tests the norm stays below the clip, as at the
  start of a real search; docs/method.md names the difference.
- DARTS space: xautodl's NASNet search network adds BN-ReLU before the pooling (``lastact``) and
  no BN after pooling ops, where DARTS' model_search.py (and romenas) has the opposite; the
  DARTS-space tests run xautodl's network with ``lastact`` = identity and compare pooling ops
  separately (``test_darts_space_pooling_is_xautodls_followed_by_bn``).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from romenas.config import SearchConfig, build_config
from romenas.search import create_algorithm
from romenas.search.loop import Searcher
from romenas.spaces import get_space

from conftest import make_folder
import xautodl_reference as ref

#: The DARTS-space op set both networks share exactly (pooling differs: see the module docstring).
DARTS_SHARED_OPS = ["none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
SIZES = {"nb201": dict(C=4, N=1, layers=1), "darts": dict(C=4, N=1, layers=3)}  # NASNet N=1: 3 cells

#: The official settings, as their sources give them (AutoDL-Projects, D-X-Y):
#: configs/nas-benchmark/algos/GDAS.config and DARTS.config: SGD LR 0.025, momentum 0.9, nesterov 1,
#: decay 0.0005, cosine to eta_min 0.001 (GDAS 250 epochs, DARTS 50), batch 64;
#: configs/search-opts/GDAS-NASNet-CIFAR.config: the same with batch 256; DARTS-NASNet-CIFAR.config:
#: decay 0.0003, nesterov 1, 50 epochs, batch 64;
#: scripts-search/NAS-Bench-201-algos/GDAS.sh and DARTS-V1.sh (and NASNet-space-search-by-GDAS.sh):
#: --arch_learning_rate 0.0003 --arch_weight_decay 0.001, GDAS --tau_max 10 --tau_min 0.1;
#: exps/NAS-Bench-201-algos/GDAS.py: Adam betas (0.5, 0.999), clip_grad_norm_(..., 5);
#: DARTS-V1.py: the same Adam, --gradient_clip default 5.
OFFICIAL = {
    ("nb201", "gdas"): dict(lr=0.025, eta_min=0.001, momentum=0.9, decay=5e-4, nesterov=True, clip=5.0, a_lr=3e-4,
                            a_betas=(0.5, 0.999), a_decay=1e-3, tau_max=10.0, tau_min=0.1),
    ("nb201", "darts"): dict(lr=0.025, eta_min=0.001, momentum=0.9, decay=5e-4, nesterov=True, clip=5.0, a_lr=3e-4,
                             a_betas=(0.5, 0.999), a_decay=1e-3),
    ("darts", "gdas"): dict(lr=0.025, eta_min=0.001, momentum=0.9, decay=5e-4, nesterov=True, clip=5.0, a_lr=3e-4,
                            a_betas=(0.5, 0.999), a_decay=1e-3, tau_max=10.0, tau_min=0.1),
    ("darts", "darts"): dict(lr=0.025, eta_min=0.001, momentum=0.9, decay=3e-4, nesterov=True, clip=5.0, a_lr=3e-4,
                             a_betas=(0.5, 0.999), a_decay=1e-3),
}
#: romenas' side: its recipe for the pair; the DARTS space's DARTS recipe is DARTS' own paper code
#: (arch-first, no Nesterov), so xautodl's NASNet DARTS order and optimiser are given as flags.
ROMENAS = {("nb201", "gdas"): dict(recipe="gdas-nb201"), ("nb201", "darts"): dict(recipe="darts-nb201"),
           ("darts", "gdas"): dict(recipe="gdas-darts"),
           ("darts", "darts"): dict(recipe="darts-darts", step_order="weights-first", w_nesterov=True)}
PAIRS = sorted(OFFICIAL)


def _ops(space: str) -> list[str]:
    return list(get_space("nb201").site_ops["cell"][0]) if space == "nb201" else DARTS_SHARED_OPS


def _networks(space: str, algorithm: str, dtype=torch.float64, unselected_ops: bool | None = None):
    """(romenas supernet, romenas algorithm, xautodl network), xautodl's holding romenas' weights and alpha."""
    torch.manual_seed(0)
    rspace = get_space(space).restricted(_ops(space))
    if algorithm == "gdas":
        algo = create_algorithm("gdas", rspace, torch.Generator().manual_seed(0),
                                unselected_ops=space == "nb201" if unselected_ops is None else unselected_ops)
    else:
        algo = create_algorithm("darts", rspace, torch.Generator().manual_seed(0))
    size = SIZES[space]
    rnet = rspace.build_supernet(size["C"], size["layers"], 10, 3).to(dtype)
    algo = algo.to(dtype)
    xnet = ref.build(space, algorithm, _ops(space), size["C"], size["N"], 10).to(dtype)
    if space == "darts":
        xnet.lastact = nn.Identity()
    ref.load_from_romenas(xnet, rnet, {k: v.detach() for k, v in algo.alphas.items()}, space)
    return rnet, algo, xnet


def _batch(dtype, n=6, side=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, side, side, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("space,algorithm", PAIRS)
def test_the_state_mapping_covers_every_romenas_tensor_once(space, algorithm):
    rnet, _, xnet = _networks(space, algorithm)
    mapping, extra = ref.state_mapping(space, xnet, rnet)
    rstate, xstate = rnet.state_dict(), xnet.state_dict()
    assert sorted(mapping.values()) == sorted(rstate)  # every romenas tensor, each from exactly one xautodl key
    assert all(xstate[x].shape == rstate[r].shape for x, r in mapping.items())
    modules = dict(xnet.named_modules())
    # The rest: exactly the biases of xautodl's affine-free convolutions (bias=not affine).
    assert extra and all(k.endswith(".bias") and isinstance(modules[k[:-len(".bias")]], nn.Conv2d) for k in extra)
    arch = {n for n, _ in xnet.named_parameters() if n.startswith("arch_")}
    assert len(arch) == len(ref.arch_parameters(xnet))
    assert {n for n, _ in xnet.named_parameters()} - set(mapping) - set(extra) == arch
    for x, r in list(mapping.items())[:: max(1, len(mapping) // 25)]:
        assert torch.equal(xstate[x], rstate[r]), (x, r)


def _forward_backward(space, algorithm, dtype, monkeypatch, unselected_ops=None):
    rnet, algo, xnet = _networks(space, algorithm, dtype, unselected_ops)
    x, y = _batch(dtype)
    rnet.train(), xnet.train()
    tau = 2.0
    if algorithm == "gdas":
        xnet.set_tau(tau)
    with ref.recorded_gumbel(monkeypatch) as draws:
        plans = algo.arch_plans(tau)
    r_logits = rnet(x, plans)
    r_loss = F.cross_entropy(r_logits, y)
    r_loss.backward()
    with ref.injected_gumbel(monkeypatch, draws):
        x_logits = xnet(x)[1]
    x_loss = F.cross_entropy(x_logits, y)
    x_loss.backward()
    return rnet, algo, xnet, (r_logits, r_loss), (x_logits, x_loss)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("space,algorithm", PAIRS)
def test_one_forward_and_backward_equal_the_official_network(space, algorithm, dtype, tol, monkeypatch):
    rnet, algo, xnet, (r_logits, r_loss), (x_logits, x_loss) = _forward_backward(space, algorithm, dtype, monkeypatch)
    assert (r_logits - x_logits).abs().max().item() < tol
    assert abs(r_loss.item() - x_loss.item()) < tol
    mapping, _ = ref.state_mapping(space, xnet, rnet)
    r_params, x_params = dict(rnet.named_parameters()), dict(xnet.named_parameters())
    checked = 0
    for xk, rk in mapping.items():
        if rk in r_params:
            rg, xg = r_params[rk].grad, x_params[xk].grad
            rg = torch.zeros_like(r_params[rk]) if rg is None else rg
            xg = torch.zeros_like(x_params[xk]) if xg is None else xg
            assert (rg - xg).abs().max().item() < tol * max(1.0, xg.abs().max().item()), rk
            checked += 1
    assert checked == len(r_params)
    for kind, a in ref.arch_parameters(xnet).items():
        assert (algo.alphas[kind].grad - a.grad).abs().max().item() < tol, kind
        assert a.grad.abs().max().item() > 100 * tol  # a real gradient, not two zeros


def test_gdas_estimator_terms_follow_each_official_network(monkeypatch):
    """xautodl's NB201 GDAS adds the unselected ops' straight-through weights, its NASNet GDAS does
    not: with the other form, romenas' alpha gradient differs from the official one (the values do not)."""
    for space in ("nb201", "darts"):
        _, algo, xnet, (r_logits, _), (x_logits, _) = _forward_backward(space, "gdas", torch.float64, monkeypatch,
                                                                        unselected_ops=space != "nb201")
        assert (r_logits - x_logits).abs().max().item() < 1e-10
        diff = max((algo.alphas[k].grad - a.grad).abs().max().item() for k, a in ref.arch_parameters(xnet).items())
        assert diff > 1e-6, space


def test_the_pre_bn_biases_xautodl_adds_change_nothing(monkeypatch):
    """Random biases in xautodl's affine-free convolutions: logits unchanged to 1e-10 (float64) and
    the biases' gradients ~0, because each conv feeds a batch norm in training mode."""
    rnet, algo, xnet = _networks("darts", "gdas")
    _, extra = ref.state_mapping("darts", xnet, rnet)
    params = dict(xnet.named_parameters())
    x, y = _batch(torch.float64)
    xnet.set_tau(2.0)
    with ref.recorded_gumbel(monkeypatch) as draws:
        algo.arch_plans(2.0)
    with ref.injected_gumbel(monkeypatch, draws):
        zero = xnet(x)[1]
    with torch.no_grad():
        for k in extra:
            params[k].normal_()
    with ref.injected_gumbel(monkeypatch, draws):
        biased = xnet(x)[1]
    F.cross_entropy(biased, y).backward()
    assert (zero - biased).abs().max().item() < 1e-10
    assert max(params[k].grad.abs().max().item() for k in extra if params[k].grad is not None) < 1e-10


def test_darts_space_pooling_is_xautodls_followed_by_bn():
    """The one op-level difference in the DARTS space: DARTS' model_search.py (and romenas) follows
    each pooling op of the supernet by an affine-free BN; xautodl's NASNet cells do not."""
    from xautodl.models.cell_operations import OPS as XOPS

    net = get_space("darts").build_supernet(4, 3, 10, 3).double().train()
    edge = net.cells[0].dag.edges[0]
    x = torch.randn(4, 4, 8, 8, dtype=torch.float64)
    for name in ("max_pool_3x3", "avg_pool_3x3"):
        official = XOPS[name](4, 4, 1, False, True).double()
        bn = nn.BatchNorm2d(4, affine=False).double().train()
        assert (edge[edge.op_names.index(name)](x) - bn(official(x))).abs().max().item() < 1e-10


def test_the_weight_schedule_is_xautodls_cosine_over_the_whole_search():
    """romenas' per-epoch cosine (torch's CosineAnnealingLR) against xautodl's CosineAnnealingLR
    (procedures/optimizers.py, T_max = epochs) over GDAS.config's 250 epochs."""
    cfg = build_config(SearchConfig, {"algorithm": "gdas", "space": "nb201", "recipe": "gdas-nb201"})
    p = nn.Parameter(torch.zeros(1))
    ours = torch.optim.SGD([p], cfg.w_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(ours, cfg.epochs, eta_min=cfg.w_lr_min)
    theirs = torch.optim.SGD([nn.Parameter(torch.zeros(1))], 0.025)
    official = ref.CosineAnnealingLR(theirs, 0, 250, 250, 0.001)
    for epoch in range(250):
        official.update(epoch, 0.0)
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        ours.step()  # no gradient: the schedule alone moves
        sched.step()


def _romenas_search(space, algorithm, tmp_path, epochs=2, steps=3, batch=8):
    """romenas' own search loop (Searcher.fit) under its recipe for the pair, on a 16x16 RGB folder:
    ``epochs`` epochs of ``steps`` iterations. Returns (searcher, its initial state, batches per epoch)."""
    folder = make_folder(tmp_path / "images", 2 * steps * batch, size=(16, 16), classes=3)
    size = SIZES[space]
    cfg = build_config(SearchConfig, dict(algorithm=algorithm, space=space, dataset=str(folder), ops=_ops(space),
                                          channels=size["C"], layers=size["layers"], epochs=epochs, batch_size=batch,
                                          limit_train=2 * steps * batch, augment="none", progress=False, seed=0,
                                          **ROMENAS[(space, algorithm)]))
    searcher = Searcher(cfg, None)
    initial = ({k: v.clone() for k, v in searcher.net.state_dict().items()},
               {k: v.detach().clone() for k, v in searcher.algo.alphas.items()})
    seen, inputs = [], searcher.runtime.inputs

    def record(t):
        seen.append(t)
        return inputs(t)

    searcher.runtime.inputs = record
    return searcher, initial, seen


@pytest.mark.parametrize("space,algorithm", PAIRS)
def test_the_search_loop_runs_the_official_scripts_steps(space, algorithm, tmp_path, monkeypatch):
    """Six iterations (two epochs of three, so the cosine schedule and tau move) of romenas' loop
    under its recipe, against the official loop (xautodl_reference.official_search) on xautodl's
    network from the same start, batches and noise: alpha, every weight and every BN statistic
    equal to 1e-5 (float32)."""
    searcher, (net0, alpha0), seen = _romenas_search(space, algorithm, tmp_path)
    with ref.recorded_gumbel(monkeypatch) as draws:
        searcher.fit()
    steps = len(seen) // 4
    assert steps == 6
    batches = [(seen[4 * i], seen[4 * i + 1], seen[4 * i + 2], seen[4 * i + 3]) for i in range(steps)]
    size = SIZES[space]
    xnet = ref.build(space, algorithm, _ops(space), size["C"], size["N"], 3)
    if space == "darts":
        xnet.lastact = nn.Identity()
    start = get_space(space).restricted(_ops(space)).build_supernet(size["C"], size["layers"], 3, 3)
    start.load_state_dict(net0)
    ref.load_from_romenas(xnet, start, alpha0, space)
    with ref.injected_gumbel(monkeypatch, draws):
        ref.official_search(xnet, [batches[:3], batches[3:]], **OFFICIAL[(space, algorithm)])
    for kind, a in ref.arch_parameters(xnet).items():
        moved = (a.detach() - alpha0[kind]).abs().max().item()
        assert moved > 1e-4  # six Adam steps of ~3e-4 each
        assert (searcher.algo.alphas[kind].detach() - a.detach()).abs().max().item() < 1e-5, kind
    mapping, _ = ref.state_mapping(space, xnet, searcher.net)
    rstate, xstate = searcher.net.state_dict(), xnet.state_dict()
    for xk, rk in mapping.items():
        assert (rstate[rk].double() - xstate[xk].double()).abs().max().item() < 1e-5, rk
