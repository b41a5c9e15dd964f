"""Generated benchmark data: jet features (hand-checked values), the shipped jet sample, the
calorimeter shower simulator; tiny real generation runs for reproducibility and caching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from connas4ml_torch.datasets import calo, jet_features, jets
from connas4ml_torch.datasets.jet_features import FEATURE_NAMES

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _massless(pt, y, phi) -> np.ndarray:
    pt, y, phi = (np.asarray(v, dtype=np.float64) for v in (pt, y, phi))
    return np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(y), pt * np.cosh(y)])


# ----------------------------------------------------------------------------- jet features


def test_two_prong_symmetric_toy_jet_has_known_features():
    d = 0.4
    f = jet_features.jet_features(_massless([500, 500], [0.3, 0.3], [-d / 2, d / 2]))
    assert f[F["mass_mmdt"]] == pytest.approx(np.sqrt(2 * 500 * 500 * (1 - np.cos(d))), rel=1e-9)
    assert f[F["zlogz"]] == pytest.approx(np.log(0.5))
    assert f[F["multiplicity"]] == 2
    assert f[F["c1_b0_mmdt"]] == pytest.approx(0.25)  # z1 z2
    assert f[F["c1_b1_mmdt"]] == pytest.approx(d / 4)
    assert f[F["c1_b2_mmdt"]] == pytest.approx(d**2 / 4)
    for name in ("c2_b1_mmdt", "d2_b2_mmdt", "m2_b1_mmdt", "n2_b2_mmdt"):  # no third prong
        assert f[F[name]] == 0.0


def test_three_prong_equilateral_toy_jet_hits_known_ratio_values():
    d = 0.3
    ys = np.array([0.0, d, d / 2])
    phis = np.array([0.0, 0.0, d * np.sqrt(3) / 2])
    f = jet_features.jet_features(_massless([300, 300, 300], ys, phis))
    assert f[F["c1_b0_mmdt"]] == pytest.approx(1 / 3)
    assert f[F["c2_b1_mmdt"]] == pytest.approx(d / 3)
    assert f[F["c2_b2_mmdt"]] == pytest.approx(d**2 / 3)
    assert f[F["d2_b1_mmdt"]] == pytest.approx(1.0)
    assert f[F["d2_b2_mmdt"]] == pytest.approx(1.0)
    assert f[F["d2_a1_b2_mmdt"]] == pytest.approx(3**1.5 / 27)
    assert f[F["n2_b1_mmdt"]] == pytest.approx(1 / 3, rel=1e-6)
    assert f[F["m2_b2_mmdt"]] == pytest.approx(1 / 9, rel=1e-6)


def test_mmdt_grooms_a_soft_prong_and_keeps_a_hard_one():
    soft = _massless([900, 40], [0.0, 0.0], [0.0, 0.5])  # z = 0.043 < 0.1
    hard = _massless([700, 240], [0.0, 0.0], [0.0, 0.5])  # z = 0.26 > 0.1
    assert jet_features.mmdt_groom(soft).tolist() == [0]
    assert jet_features.mmdt_groom(hard).tolist() == [0, 1]
    f = jet_features.jet_features(soft)
    assert f[F["mass_mmdt"]] == pytest.approx(0.0, abs=1e-3)
    assert f[F["multiplicity"]] == 2  # multiplicity is of the ungroomed jet
    assert jet_features.jet_features(hard)[F["mass_mmdt"]] > 100


def test_vectorised_correlators_match_brute_force_triples():
    rng = np.random.default_rng(3)
    n = 22
    pt = rng.exponential(30, n)
    p4 = _massless(pt, rng.normal(0, 0.3, n), rng.normal(0, 0.3, n))
    _, y, phi = jet_features.kinematics(p4)
    z, th = pt / pt.sum(), jet_features.pairwise_delta_r(y, phi)
    got = jet_features.energy_correlators(z, th, (1.0, 2.0))
    for beta in (1.0, 2.0):
        e2 = sum(z[i] * z[j] * th[i, j] ** beta for i, j in itertools.combinations(range(n), 2))
        e3 = e13 = e23 = 0.0
        for i, j, k in itertools.combinations(range(n), 3):
            a = sorted([th[i, j], th[i, k], th[j, k]])
            w = z[i] * z[j] * z[k]
            e3 += w * (a[0] * a[1] * a[2]) ** beta
            e13 += w * a[0] ** beta
            e23 += w * (a[0] * a[1]) ** beta
        assert got[beta]["e2"] == pytest.approx(e2, rel=1e-10)
        assert got[beta]["e3"] == pytest.approx(e3, rel=1e-10)
        assert got[beta]["1e3"] == pytest.approx(e13, rel=1e-5)  # float32 triple tensor
        assert got[beta]["2e3"] == pytest.approx(e23, rel=1e-5)


def test_feature_code_rejects_bad_input():
    with pytest.raises(ValueError, match="p4"):
        jet_features.jet_features(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="beta"):
        jet_features.energy_correlators(np.ones(3) / 3, np.ones((3, 3)), (0.0,))


# ----------------------------------------------------------------------------- jets


@pytest.fixture(scope="module")
def sample() -> jets.JetData:
    return jets.load_jets()


def test_shipped_sample_shapes_balance_and_physics(sample):
    assert sample.X.dtype == np.float32 and sample.y.dtype == np.int64
    assert sample.X.shape == (len(sample), 16)
    assert sample.feature_names == FEATURE_NAMES
    assert sample.class_names == ("q", "g", "W", "Z", "t")
    counts = np.bincount(sample.y, minlength=5)
    assert counts.min() == counts.max() >= 2000
    assert np.isfinite(sample.X).all()
    assert sample.meta["seed"] == jets.SAMPLE_SEED and sample.meta["pythia_version"].startswith(
        "8."
    )
    mass = sample.X[:, F["mass_mmdt"]]
    med = {c: np.median(mass[sample.y == i]) for i, c in enumerate(sample.class_names)}
    assert 70 < med["W"] < 90 and 80 < med["Z"] < 100 and 150 < med["t"] < 190
    assert med["q"] < 60 and med["g"] < 70
    mult = sample.X[:, F["multiplicity"]]
    assert (mult >= 1).all() and np.array_equal(mult, np.round(mult))
    # gluon jets have more constituents than quark jets
    assert np.median(mult[sample.y == 1]) > np.median(mult[sample.y == 0])


def test_sample_features_separate_the_classes(sample):
    from sklearn.ensemble import HistGradientBoostingClassifier

    tr, va, te = jets.train_val_test_split(sample, seed=1)
    (xtr, xte), mean, std = jets.standardize(tr.X, te.X)
    assert np.allclose(xtr.mean(0), 0, atol=1e-3) and np.allclose(xtr.std(0), 1, atol=1e-3)
    clf = HistGradientBoostingClassifier(max_iter=60, random_state=0).fit(xtr, tr.y)
    acc = float((clf.predict(xte) == te.y).mean())
    assert acc > 0.55, acc


def test_generation_is_reproducible_and_prefix_consistent_with_the_sample(sample, tmp_path):
    # chunk seeds depend on (seed, class, chunk) only: 2 jets/class with seed 0 are the sample's
    # first 2 jets per class, whatever n_jobs is
    fresh = jets.generate_jets(2, seed=jets.SAMPLE_SEED, progress=False)
    head = jets.load_jets(2)
    assert fresh.y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    np.testing.assert_allclose(fresh.X, head.X, rtol=1e-5)
    # a different seed goes to the on-disk cache and differs; a second call reads the file back
    other = jets.load_jets(2, seed=7, cache_dir=tmp_path, progress=False)
    assert (tmp_path / "jets_n2_s7.npz").is_file()
    assert not np.allclose(other.X, fresh.X)
    again = jets.load_jets(2, seed=7, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.X, other.X)
    np.testing.assert_array_equal(again.y, other.y)


def test_parallel_generation_matches_serial():
    par = jets.generate_jets(1, seed=jets.SAMPLE_SEED, n_jobs=2, progress=False)
    np.testing.assert_allclose(par.X, jets.load_jets(1).X, rtol=1e-5)


def test_split_is_stratified_and_disjoint(sample):
    sub = jets._take_per_class(sample, 100)
    parts = jets.train_val_test_split(sub, (0.6, 0.2, 0.2), seed=0)
    assert [len(p) for p in parts] == [300, 100, 100]
    for p in parts:
        assert np.bincount(p.y, minlength=5).min() == np.bincount(p.y, minlength=5).max()
    rows = [set(map(bytes, p.X)) for p in parts]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    with pytest.raises(ValueError, match="fractions"):
        jets.train_val_test_split(sub, (0.5, 0.2, 0.2))


def test_jet_arguments_are_checked():
    with pytest.raises(ValueError, match="n_per_class"):
        jets.generate_jets(0)
    with pytest.raises(ValueError, match="n_jobs"):
        jets.generate_jets(1, n_jobs=0)
    with pytest.raises(ValueError, match="n_per_class"):
        jets.load_jets(-1)


# ----------------------------------------------------------------------------- calorimeter


@pytest.fixture(scope="module")
def showers() -> calo.CaloData:
    return calo.generate_showers(600, seed=0, progress=False)


def test_shower_shapes_dtypes_ranges(showers):
    assert showers.X.shape == (600, 5, 32, 32) and showers.X.dtype == np.float32
    assert showers.y.shape == (600,) and showers.y.dtype == np.float32
    assert np.isfinite(showers.X).all() and (showers.X >= 0).all()
    assert showers.y.min() >= 10 and showers.y.max() <= 500
    # log-uniform: about half of the showers below the geometric mean
    assert 0.4 < np.mean(showers.y < np.sqrt(10 * 500)) < 0.6


def test_deposited_energy_tracks_true_energy_and_resolution_improves(showers):
    total = showers.X.sum(axis=(1, 2, 3))
    assert np.corrcoef(total, showers.y)[0, 1] > 0.9
    ratio = total / showers.y
    low, high = ratio[showers.y < 30], ratio[showers.y > 200]
    assert low.std() / low.mean() > high.std() / high.mean()


def test_shower_depth_grows_with_energy(showers):
    depth = calo.shower_depth(showers.X)
    assert np.corrcoef(depth, np.log(showers.y))[0, 1] > 0.5
    assert depth[showers.y > 200].mean() > depth[showers.y < 30].mean() + 0.3


def test_contained_noiseless_shower_deposits_all_energy():
    d = calo.generate_showers(
        20, seed=1, grid=(32, 32), n_layers=4, depth_x0=80.0, cell_size=2.0,
        stochastic=0.0, constant=0.0, noise=0.0, jitter=0.0, radius_jitter=0.0, progress=False,
    )  # fmt: skip
    ratio = d.X.sum(axis=(1, 2, 3)) / d.y
    assert np.all(ratio > 0.98) and np.all(ratio < 1.0 + 1e-4)


def test_showers_reproducible_by_seed_and_cached(tmp_path):
    a = calo.generate_showers(40, seed=5, progress=False)
    b = calo.generate_showers(40, seed=5, progress=False)
    c = calo.generate_showers(40, seed=6, progress=False)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    first = calo.load_calo(40, seed=5, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("calo_n40_s5_*.npz"))) == 1
    second = calo.load_calo(40, seed=5, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first.X, a.X)
    np.testing.assert_array_equal(second.X, a.X)
    np.testing.assert_array_equal(second.y, a.y)
    assert second.meta["seed"] == 5


def test_calo_arguments_are_checked():
    with pytest.raises(ValueError, match="n must"):
        calo.generate_showers(0)
    with pytest.raises(ValueError, match="energy_range"):
        calo.generate_showers(2, energy_range=(500, 10))
    with pytest.raises(ValueError, match="grid"):
        calo.generate_showers(2, grid=(32,))
    with pytest.raises(ValueError, match="noise"):
        calo.generate_showers(2, noise=-1.0)
