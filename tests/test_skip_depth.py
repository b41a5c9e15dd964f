"""Op choice beyond kernels (issue 15, item 5): skippable blocks and depth as a DARTS choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.errors import ConfigError, UnsupportedLayerError
from connas4ml_torch.space import depth_choice

HLS = cn.HLSConfig(backend="Vitis", part="xcvu13p-flga2577-2-e", io_type="io_parallel",
                   strategy="Latency", reuse_factor=1)


def block(width: int = 24) -> nn.Module:
    return nn.Sequential(nn.Linear(width, width), nn.ReLU())


class DeepMLP(nn.Module):
    """A stem, ``n`` equal-shape blocks in a row (the depth choice) and a head."""

    def __init__(self, n: int = 3, width: int = 24):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(16, width), nn.ReLU())
        self.blocks = nn.Sequential(*(block(width) for _ in range(n)))
        self.head = nn.Linear(width, 5)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def task(n: int = 1024, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, 16, generator=g) * 1.2
    y = torch.randint(0, 5, (n,), generator=g)
    return centres[y] + torch.randn(n, 16, generator=g), y


def space(**kw) -> cn.SearchSpace:
    return cn.SearchSpace(skip=["blocks.*"], weight_bits=[4, 8], act_bits=[4, 8], **kw)


def trained_supernet(sp: cn.SearchSpace | None = None, steps: int = 3):
    torch.manual_seed(0)
    x, _ = task(256)
    sn = cn.searchable(DeepMLP(), sp or space(), example_input=x)
    sn.train()
    sn.set_sampling("softmax")  # every block runs: every weight moves
    for _ in range(steps):  # move weights and thresholds off their initial values
        sn(x).square().mean().backward()
        with torch.no_grad():
            for p in sn.weight_parameters():
                p -= 0.05 * p.grad
                p.grad = None
    sn.set_sampling("auto")
    return sn, x


# ---- the space ---------------------------------------------------------------------------
def test_skip_field_is_validated_naming_the_key():
    for bad in ("blocks.*", [""], [3], {"blocks.0": 1}):
        with pytest.raises(ConfigError, match="skip"):
            cn.SearchSpace(skip=bad)
    with pytest.raises(ConfigError, match="skip"):
        cn.SearchSpace.from_dict({"skip": "blocks.*"})
    assert cn.SearchSpace.from_dict({"skip": ["blocks.*"]}).to_dict()["skip"] == ["blocks.*"]
    assert depth_choice("blocks", 2, start=1) == ["blocks.1", "blocks.2"]
    with pytest.raises(ConfigError, match="depth_choice"):
        depth_choice("blocks", 0)


def test_unmatched_and_nested_patterns_are_refused_at_searchable():
    x, _ = task(32)
    with pytest.raises(ConfigError, match=r"skip\['blokcs\.\*'\] matches no module"):
        cn.searchable(DeepMLP(), cn.SearchSpace(skip=["blokcs.*"]), example_input=x)
    with pytest.raises(ConfigError, match="nested skippable blocks"):
        cn.searchable(DeepMLP(), cn.SearchSpace(skip=["blocks", "blocks.0"]), example_input=x)
    # a glob takes the outermost matches: blocks.0, blocks.1, blocks.2 (not their layers)
    sn = cn.searchable(DeepMLP(), space(), example_input=x)
    assert list(sn.skip_blocks()) == ["blocks.0", "blocks.1", "blocks.2"]
    assert sn.skip_blocks()["blocks.1"] == ["blocks.1.0", "blocks.1.1"]


def test_blocks_the_identity_cannot_replace_are_refused_naming_block_and_fix():
    x, _ = task(32)

    class Widen(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Linear(16, 24), nn.ReLU())
            self.grow = nn.Sequential(nn.Linear(24, 32), nn.ReLU())
            self.head = nn.Linear(32, 5)

        def forward(self, x):
            return self.head(self.grow(self.stem(x)))

    with pytest.raises(UnsupportedLayerError, match=r"'grow' maps shape \(24,\) to \(32,\).*Fix"):
        cn.searchable(Widen(), cn.SearchSpace(skip=["grow"]), example_input=x)
    # the width leaving the block is searched: keep and skip would give different widths
    with pytest.raises(UnsupportedLayerError, match=r"leaves skippable block 'blocks.1'.*"
                                                    r"'blocks.1.0'.*Fix"):
        cn.searchable(DeepMLP(), space(width={"blocks.1.0": [12, 24]}), example_input=x)
    with pytest.raises(UnsupportedLayerError, match=r"enters skippable block 'blocks.0'.*'stem.0'"):
        cn.searchable(DeepMLP(), space(width={"stem.0": [12, 24]}), example_input=x)
    # a single layer is not a block; a block must end on a quantizer's grid
    with pytest.raises(UnsupportedLayerError, match=r"'blocks.0.0' \(Linear\) is a single layer.*Fix"):
        cn.searchable(model := DeepMLP(), cn.SearchSpace(skip=["blocks.0.0"]), example_input=x)
    assert type(model.blocks[0][0]) is nn.Linear  # the refusal left the model as it was

    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Linear(16, 24), nn.ReLU())
            self.lin = nn.Sequential(nn.Linear(24, 24))
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(24, 5))

        def forward(self, x):
            return self.head(self.lin(self.stem(x)))

    with pytest.raises(UnsupportedLayerError, match=r"output of skippable block 'lin'.*grid.*Fix"):
        cn.searchable(Bare(), cn.SearchSpace(skip=["lin"]), example_input=x)


def test_widths_inside_a_block_may_be_searched():
    class Bottleneck(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Linear(16, 24), nn.ReLU())
            self.blk = nn.Sequential(nn.Linear(24, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU())
            self.head = nn.Linear(24, 5)

        def forward(self, x):
            return self.head(self.blk(self.stem(x)))

    x, _ = task(128)
    sn = cn.searchable(Bottleneck(), cn.SearchSpace(skip=["blk"], width={"blk.0": [8, 32]}),
                       example_input=x)
    sn.eval()
    for keep in (0, 1):
        ch = {"blk": {"keep": keep}, "blk.0": {"width": 8}}
        with torch.no_grad(), sn.fixed(ch):
            a = sn(x)
        assert torch.equal(a, sn.derive(ch).eval()(x))


# ---- supernet == derived ------------------------------------------------------------------
@pytest.mark.parametrize("keep", [(1, 1, 1), (0, 1, 0), (1, 0, 1), (0, 0, 0)])
def test_one_hot_supernet_equals_derived_exactly(keep):
    sn, x = trained_supernet()
    sn.eval()
    ch = {f"blocks.{i}": {"keep": k} for i, k in enumerate(keep)}
    ch["blocks.1.1"] = {"bits": 4}
    model = sn.derive(ch).eval()
    with torch.no_grad(), sn.fixed(ch):
        a = sn(x)
    with torch.no_grad():
        b = model(x)
    assert a.std() > 0 and torch.equal(a, b), (a - b).abs().max()
    kinds = [type(b_).__name__ for b_ in model.net.blocks]
    assert kinds == ["Sequential" if k else "Identity" for k in keep]
    assert model.choices["blocks.0"] == {"keep": keep[0]}
    # nothing of the search is left: the kept blocks hold Brevitas layers under the user's names
    names = {n for n, _ in model.named_modules()}
    assert all(f"net.blocks.{i}.0" in names for i, k in enumerate(keep) if k)


def test_relaxed_and_sampled_forward_passes():
    sn, x = trained_supernet()
    sn.eval()
    blk = sn.net.blocks[0]
    with torch.no_grad():
        blk.alpha_keep.copy_(torch.tensor([0.3, -0.2]))
        stem = sn.net.stem(sn.input_quant(x[:8]))
        inner = blk.block(stem)
    sn.set_sampling("softmax")
    p = torch.softmax(blk.alpha_keep.detach(), 0)
    with torch.no_grad():
        assert torch.allclose(blk(stem), p[1] * inner + p[0] * stem)
    # the relaxation gives the keep logits a gradient; a sampled pass runs one path
    sn.train()
    sn(x[:32]).square().mean().backward()
    assert blk.alpha_keep.grad is not None and blk.alpha_keep.grad.abs().sum() > 0
    sn.set_sampling("auto")
    with torch.no_grad():
        out = blk(stem)
    key = ("blocks.0", "keep")
    assert key in sn.control.samples
    drawn = int(sn.control.samples[key][1])
    assert torch.equal(out, inner if drawn else stem)
    # a skipped block's weights still get a (zero) gradient, as DistributedDataParallel expects
    sn.zero_grad(set_to_none=True)
    with sn.fixed({"blocks.1": {"keep": 0}}):
        sn(x[:32]).square().mean().backward()
    grads = [w.grad for w in sn.net.blocks[1].block.parameters() if w.requires_grad]
    assert grads and all(g is not None and not g.any() for g in grads)
    assert sn.net.blocks[2].block[0].weight.grad.abs().sum() > 0  # kept (argmax: ties keep)


def test_expected_cost_is_p_keep_times_the_block_cost():
    sn, _ = trained_supernet(steps=0)
    s = cn.Search(sn, cn.ResourceModel.default(), HLS)
    t = s.tables
    keep = {b: t._var_of[(b, "keep")] for b in sn.skip_blocks()}
    inside = [lt for lt in t.layers if lt.name.startswith("blocks.")]
    assert inside and all(any(v in keep.values() for v in lt.variables) for lt in inside)
    full = {v: len(var.values) - 1 for v, var in enumerate(t.variables)}
    lut = t.resources.index("LUT")
    block0 = sum(float(lt.table[tuple(full[v] for v in lt.variables)][lut])
                 for lt in inside if lt.name.startswith("blocks.0."))
    assert block0 > 0
    # skipping blocks.0 removes exactly its layers' cost
    skipped = {**full, keep["blocks.0"]: 0}
    assert float(t.cost_at(full)[lut] - t.cost_at(skipped)[lut]) == pytest.approx(block0, rel=1e-5)
    assert "blocks.0.0" not in t.specs_at(skipped) and "blocks.0.0" in t.specs_at(full)
    # expected cost: linear in p_keep of the block (differentiable)
    with torch.no_grad():
        for p in sn.arch_parameters():
            p.copy_(torch.tensor([-60.0, 60.0]) if p.numel() == 2 else
                    F.one_hot(torch.tensor(p.numel() - 1), p.numel()) * 60.0)
    e_keep = float(s.expected_resources()["LUT"].detach())
    alpha0 = sn.net.blocks[0].alpha_keep
    with torch.no_grad():
        alpha0.copy_(torch.tensor([60.0, -60.0]))  # p_keep = 0
    e_skip = s.expected_resources()["LUT"].detach()
    assert e_keep - float(e_skip) == pytest.approx(block0, rel=1e-4)
    with torch.no_grad():
        alpha0.zero_()  # p_keep = 0.5
    e_half = s.expected_resources()["LUT"]
    assert float(e_half.detach()) == pytest.approx(float(e_skip) + 0.5 * block0, rel=1e-4)
    e_half.backward()
    assert alpha0.grad[1] > 0 > alpha0.grad[0]  # keeping costs more


def test_argmax_cost_equals_the_cost_model_on_the_derived_network():
    """Equal bits on both sides of every block: the tables price a skipped block exactly as the
    cost model prices the derived network (its own layer specs, skipped layers absent)."""
    from connas4ml_torch.export.specs import layer_specs

    cost = cn.ResourceModel.default()
    sn, x = trained_supernet(cn.SearchSpace(skip=["blocks.*"], weight_bits=[4, 6],
                                            act_bits=[6]), steps=0)
    s = cn.Search(sn, cost, HLS)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(4):
        with torch.no_grad():
            for p in sn.arch_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 3)
        seen.add(tuple(sn.choices()[f"blocks.{i}"]["keep"] for i in range(3)))
        a = s.argmax_resources()
        net = cost.predict_network(list(layer_specs(sn.derive(), x[:4], HLS).values()))
        for r, target in (("LUT", "LUT"), ("FF", "FF"), ("latency", "latency_cycles")):
            assert a[r] == pytest.approx(net[target], rel=1e-4, abs=1e-3), r
    assert any(0 in k for k in seen)  # some block was skipped


class PoolBlocks(nn.Module):
    """Conv2d stem, then two shape-keeping blocks that end in a max pool (padded conv, ReLU,
    3x3 max with stride 1), then a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU())
        self.blocks = nn.Sequential(*(nn.Sequential(nn.Conv2d(4, 4, 3, padding=2), nn.ReLU(),
                                                    nn.MaxPool2d(3, stride=1)) for _ in range(2)))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 3))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def test_a_max_pool_inside_a_skipped_block_costs_nothing():
    """The pool's table carries its block's keep variable (cost 0 at skip), and the tables still
    price every derived network as the cost model prices its own specs."""
    from connas4ml_torch.export.specs import layer_specs

    cost = cn.ResourceModel.default()
    x = torch.randn(16, 2, 8, 8)
    sn = cn.searchable(PoolBlocks(), cn.SearchSpace(skip=["blocks.*"], weight_bits=[4, 6],
                                                    act_bits=[6]), example_input=x)
    t = cn.Search(sn, cost, HLS).tables
    pools = {lt.name: lt for lt in t.layers if lt.name.endswith(".2")}
    assert set(pools) == {"blocks.0.block.2", "blocks.1.block.2"}
    kv = t._var_of[("blocks.0", "keep")]
    pool = pools["blocks.0.block.2"]
    assert kv in pool.variables and kv not in pools["blocks.1.block.2"].variables
    lut = t.resources.index("LUT")
    at = [slice(None)] * len(pool.variables)
    at[pool.variables.index(kv)] = 0
    assert float(pool.table[tuple(at)][..., lut].abs().max()) == 0.0
    at[pool.variables.index(kv)] = 1
    assert float(pool.table[tuple(at)][..., lut].min()) > 0
    full = {v: len(var.values) - 1 for v, var in enumerate(t.variables)}
    skipped = {**full, kv: 0}
    assert "blocks.0.block.2" not in t.specs_at(skipped) and "blocks.0.block.2" in t.specs_at(full)
    for choice in (full, skipped):
        specs = layer_specs(sn.derive(t.choice_to_layers(choice)), x[:4], HLS)
        assert sum(sp.activation == "max" for sp in specs.values()) == 1 + choice[kv]
        net = cost.predict_network(list(specs.values()))
        assert float(t.cost_at(choice)[lut]) == pytest.approx(net["LUT"], rel=1e-4)


# ---- the search -----------------------------------------------------------------------------
def run_search(constraints=None, steps: int = 12, sampling: str = "auto"):
    torch.manual_seed(0)
    x, y = task(1024)
    sn = cn.searchable(DeepMLP(), space(), example_input=x[:128])
    s = cn.Search(sn, cn.ResourceModel.default(), HLS, constraints=constraints, arch_lr=0.1,
                  dual_lr=0.5, temperature=(1.0, 0.5), anneal_steps=max(steps, 1))
    sn.set_sampling(sampling)
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    for step in range(steps):
        i = (step * 64) % 448
        xv, yv = x[512 + i:576 + i], y[512 + i:576 + i]
        s.arch_step(lambda xv=xv, yv=yv: F.cross_entropy(sn(xv), yv))
        opt.zero_grad()
        F.cross_entropy(sn(x[i:i + 64]), y[i:i + 64]).backward()
        opt.step()
    return s, x


@pytest.mark.parametrize("sampling", ["auto", "softmax"])
def test_short_search_derives_the_chosen_depth(sampling):
    s, x = run_search(sampling=sampling)
    sel = s.selection()
    model = s.derive(sel)
    kept = [sel.choices[f"blocks.{i}"]["keep"] for i in range(3)]
    assert [type(b).__name__ != "Identity" for b in model.net.blocks] == [bool(k) for k in kept]
    n_linear = sum(1 for m in model.modules() if type(m).__name__ == "QuantLinear")
    assert n_linear == 2 + sum(kept)
    assert model(x[:4]).shape == (4, 5)
    assert "blocks.0.keep" in s.choice_values()


def test_tight_budget_drives_blocks_to_skip():
    s0, _ = run_search(steps=0)
    t = s0.tables
    lut = t.resources.index("LUT")
    keep = [t._var_of[(b, "keep")] for b in s0.supernet.skip_blocks()]
    smallest = {v: 0 for v in range(len(t.variables))}  # every block skipped, fewest bits
    # the budget of one kept block at the fewest bits: two or three blocks never fit
    budget = float(t.cost_at({**smallest, keep[0]: 1})[lut])
    assert float(t.cost_at({**smallest, keep[0]: 1, keep[1]: 1})[lut]) > budget
    s, _ = run_search({"LUT": budget}, steps=6)
    sel = s.selection()
    assert sel.resources["LUT"] <= budget
    kept = [sel.choices[f"blocks.{i}"]["keep"] for i in range(3)]
    assert sum(kept) <= 1, (kept, sel.repairs)
    model = s.derive(sel)
    assert sum(1 for b in model.net.blocks if type(b).__name__ == "Identity") == 3 - sum(kept)


# ---- export ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.hls
def test_derived_net_with_a_skipped_block_exports_bit_exact(tmp_path):
    sn, x = trained_supernet(steps=5)
    ch = {"blocks.0": {"keep": 1}, "blocks.1": {"keep": 0}, "blocks.2": {"keep": 1},
          "blocks.0.1": {"bits": 4}, "blocks.2.0": {"weight_bits": 4}}
    model = sn.derive(ch).eval()
    assert type(model.net.blocks[1]).__name__ == "Identity"
    prj = cn.export_to_hls(model, cn.HLSConfig(backend="Vitis", io_type="io_parallel"),
                           tmp_path / "prj", example_input=x, progress=False)
    v = prj.verification
    assert v.n_rows == 256 and v.bit_exact and v.bit_exact_fraction == 1.0
    assert v.max_abs_diff == 0.0
    with torch.no_grad(), sn.fixed(ch):
        sn.eval()
        ref = sn(x)
    hls_out = torch.as_tensor(prj.hls_model.predict(x.numpy())).reshape(ref.shape).float()
    assert torch.equal(hls_out, ref)  # hls4ml == derived Brevitas == one-hot supernet
    names = list(prj.layer_specs)
    assert any("blocks.0" in n for n in names) and not any("blocks.1" in n for n in names), names
