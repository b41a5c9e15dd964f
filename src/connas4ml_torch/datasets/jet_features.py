"""The 16 high-level jet features of the hls4ml jet-tagging dataset, computed in numpy.

The python ``fastjet`` package has no fjcontrib, so the modified mass-drop tagger (mMDT) and the
energy-correlation functions are written here by hand (fastjet itself is still used for the
Cambridge/Aachen reclustering that mMDT declusters).

Definitions (all angles are ``Delta R_ij = sqrt(Delta y^2 + Delta phi^2)`` in rapidity-azimuth, and
momentum fractions are ``z_i = pT_i / sum_k pT_k`` over the (groomed) constituents, which is the
``pt_R`` measure of fjcontrib's EnergyCorrelator):

* generalized ECFs (Moult, Necib, Thaler, JHEP 12 (2016) 153):
  ``_v e_N^(beta) = sum_{i1<...<iN} z_i1 ... z_iN  prod_{m=1..v} min^(m){theta_ab}^beta``, where
  ``min^(m)`` is the m-th smallest of the N(N-1)/2 pairwise angles. The standard ECFs of
  Larkoski, Salam, Thaler (JHEP 06 (2013) 108) are ``e_2 = _1e_2`` and ``e_3 = _3e_3``.
* ``C_1^(beta) = e_2^(beta)``, ``C_2^(beta) = e_3^(beta) / (e_2^(beta))^2`` (LST 2013);
* ``D_2^(beta) = e_3^(beta) / (e_2^(beta))^3`` (Larkoski, Moult, Neill 2014) and
  ``D_2^(alpha,beta) = e_3^(alpha) / (e_2^(beta))^(3 alpha / beta)``; note that with these standard
  definitions ``D_2^(1,1)`` equals ``D_2^(1)`` identically (both columns are kept, as in the
  hls4ml feature list);
* ``M_2^(beta) = _1e_3^(beta) / _1e_2^(beta)`` and ``N_2^(beta) = _2e_3^(beta) / (_1e_2^(beta))^2``
  (MNT 2016).

A ratio whose denominator vanishes (a groomed jet with a single constituent) is set to 0.

mMDT (Dasgupta, Fregoso, Marzani, Salam, JHEP 09 (2013) 029), as fjcontrib's
``ModifiedMassDropTagger(z_cut=0.1)`` (= SoftDrop with beta = 0): recluster the constituents with
C/A, decluster ``j -> j1, j2``; stop when ``min(pT1, pT2) / (pT1 + pT2) > z_cut``, otherwise follow
the harder branch. The ungroomed jet supplies ``zlogz = sum z_i ln z_i`` and ``multiplicity``; all
``*_mmdt`` features use the groomed constituents.

Cost: ``e_3`` uses ``trace(P^3) / 6`` with ``P = sqrt(z) theta^beta sqrt(z)`` (O(n^3) in BLAS);
the min-angle functions ``_1e_3``, ``_2e_3`` build the full n x n x n angle tensor, so groomed jets
are capped at ``MAX_TRIPLET_CONSTITUENTS`` hardest constituents for those two (a cap that 1 TeV
groomed jets rarely reach; the cap only drops the softest particles, whose z^3 weight is tiny).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "zlogz",
    "c1_b0_mmdt",
    "c1_b1_mmdt",
    "c1_b2_mmdt",
    "c2_b1_mmdt",
    "c2_b2_mmdt",
    "d2_b1_mmdt",
    "d2_b2_mmdt",
    "d2_a1_b1_mmdt",
    "d2_a1_b2_mmdt",
    "m2_b1_mmdt",
    "m2_b2_mmdt",
    "n2_b1_mmdt",
    "n2_b2_mmdt",
    "mass_mmdt",
    "multiplicity",
)

MAX_TRIPLET_CONSTITUENTS = 150


def _as_four_vectors(p4: np.ndarray) -> np.ndarray:
    p4 = np.asarray(p4, dtype=np.float64)
    if p4.ndim != 2 or p4.shape[1] != 4:
        raise ValueError(f"p4 must have shape (n, 4) = (px, py, pz, E); got {p4.shape}")
    if p4.shape[0] == 0:
        raise ValueError("p4 must hold at least one constituent; got 0")
    return p4


def kinematics(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (pT, rapidity, phi) of four-vectors ``p4`` [n, 4] = (px, py, pz, E)."""
    p4 = _as_four_vectors(p4)
    px, py, pz, e = p4.T
    pt = np.hypot(px, py)
    # rapidity; massless-limit guard keeps E > |pz| for rounding
    e_safe = np.maximum(e, np.abs(pz) + 1e-12)
    y = 0.5 * np.log((e_safe + pz) / (e_safe - pz))
    phi = np.arctan2(py, px)
    return pt, y, phi


def pairwise_delta_r(y: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Matrix of ``Delta R_ij`` in (rapidity, phi); the diagonal is exactly 0."""
    dy = y[:, None] - y[None, :]
    dphi = np.abs(phi[:, None] - phi[None, :])
    dphi = np.where(dphi > np.pi, 2.0 * np.pi - dphi, dphi)
    return np.sqrt(dy * dy + dphi * dphi)


def invariant_mass(p4: np.ndarray) -> float:
    """Invariant mass of the summed four-vectors (0 if numerically space-like)."""
    px, py, pz, e = _as_four_vectors(p4).sum(axis=0)
    return float(np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0)))


@lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def energy_correlators(
    z: np.ndarray, theta: np.ndarray, betas: tuple[float, ...] = (1.0, 2.0)
) -> dict[float, dict[str, float]]:
    """ECFs of one jet per angular exponent: ``e2 (=_1e_2)``, ``e3 (=_3e_3)``, ``1e3``, ``2e3``.

    ``z`` are momentum fractions (summing to 1) and ``theta`` the pairwise angle matrix. Every
    beta must be > 0 (coincident-index terms then vanish, which the vectorised sums rely on).
    """
    if not all(b > 0 for b in betas):
        raise ValueError(f"every beta must be > 0; got {betas}")
    n = z.shape[0]
    out: dict[float, dict[str, float]] = {}
    sz = np.sqrt(z)
    for beta in betas:
        a = theta**beta
        np.fill_diagonal(a, 0.0)
        p = sz[:, None] * a * sz[None, :]
        # sum_{i,j,k} z_i z_j z_k a_ij a_jk a_ki = trace(P^3) = 3! e3 (coincident indices: a_ii = 0)
        e3 = float(np.einsum("ij,ji->", p @ p, p)) / 6.0 if n >= 3 else 0.0
        out[beta] = {"e2": 0.5 * float(z @ a @ z), "e3": e3, "1e3": 0.0, "2e3": 0.0}
    if n < 3:
        return out
    if n > MAX_TRIPLET_CONSTITUENTS:
        keep = np.argsort(z)[::-1][:MAX_TRIPLET_CONSTITUENTS]
        z, theta = z[keep], theta[np.ix_(keep, keep)]
        n = MAX_TRIPLET_CONSTITUENTS
    # triples as (pair i<j) x (any k): each unordered triple appears 3 times; k = i or k = j gives
    # a zero smallest angle, so those terms vanish
    iu, ju = _pairs(n)
    th = theta.astype(np.float32)
    zf = z.astype(np.float32)
    tij = th[iu, ju][:, None]
    tik, tjk = th[iu], th[ju]
    mn = np.minimum(np.minimum(tik, tjk), tij)
    mx = np.maximum(np.maximum(tik, tjk), tij)
    mid = tik + tjk + tij - mn - mx
    prod2 = mn * mid
    wpair = (zf[iu] * zf[ju]).astype(np.float64)
    for beta in betas:
        m_b = mn if beta == 1.0 else mn**beta
        p_b = prod2 if beta == 1.0 else prod2**beta
        out[beta]["1e3"] = float(wpair @ (m_b @ zf).astype(np.float64)) / 3.0
        out[beta]["2e3"] = float(wpair @ (p_b @ zf).astype(np.float64)) / 3.0
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 else 0.0


def ecf_ratios(p4: np.ndarray) -> dict[str, float]:
    """C1 (beta 0, 1, 2), C2, D2, D2^(1,beta), M2, N2 (beta 1, 2) of one (groomed) jet."""
    pt, y, phi = kinematics(p4)
    total = pt.sum()
    if total <= 0:
        raise ValueError("constituents have zero total pT")
    z = pt / total
    theta = pairwise_delta_r(y, phi)
    a0 = np.ones_like(theta)
    np.fill_diagonal(a0, 0.0)
    c1_b0 = 0.5 * float(z @ a0 @ z)
    ecf = energy_correlators(z, theta, (1.0, 2.0))
    e1, e2 = ecf[1.0], ecf[2.0]
    return {
        "c1_b0_mmdt": c1_b0,
        "c1_b1_mmdt": e1["e2"],
        "c1_b2_mmdt": e2["e2"],
        "c2_b1_mmdt": _ratio(e1["e3"], e1["e2"] ** 2),
        "c2_b2_mmdt": _ratio(e2["e3"], e2["e2"] ** 2),
        "d2_b1_mmdt": _ratio(e1["e3"], e1["e2"] ** 3),
        "d2_b2_mmdt": _ratio(e2["e3"], e2["e2"] ** 3),
        # D2^(alpha=1, beta) = e3^(1) / (e2^(beta))^(3/beta)
        "d2_a1_b1_mmdt": _ratio(e1["e3"], e1["e2"] ** 3.0),
        "d2_a1_b2_mmdt": _ratio(e1["e3"], e2["e2"] ** 1.5),
        "m2_b1_mmdt": _ratio(e1["1e3"], e1["e2"]),
        "m2_b2_mmdt": _ratio(e2["1e3"], e2["e2"]),
        "n2_b1_mmdt": _ratio(e1["2e3"], e1["e2"] ** 2),
        "n2_b2_mmdt": _ratio(e2["2e3"], e2["e2"] ** 2),
    }


def mmdt_groom(p4: np.ndarray, z_cut: float = 0.1) -> np.ndarray:
    """Indices of the constituents kept by mMDT (z_cut, beta = 0, C/A declustering).

    The C/A reclustering uses fastjet; the declustering loop is written here because python
    fastjet lacks fjcontrib's RecursiveTools.
    """
    import fastjet as fj

    p4 = _as_four_vectors(p4)
    if not 0.0 <= z_cut < 0.5:
        raise ValueError(f"z_cut must be in [0, 0.5); got {z_cut}")
    if p4.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    parts = []
    for i, (px, py, pz, e) in enumerate(p4):
        pj = fj.PseudoJet(float(px), float(py), float(pz), float(e))
        pj.set_user_index(i)
        parts.append(pj)
    cs = fj.ClusterSequence(parts, fj.JetDefinition(fj.cambridge_algorithm, 1000.0))
    jets = cs.exclusive_jets(1)
    j = jets[0]
    while True:
        j1, j2 = fj.PseudoJet(), fj.PseudoJet()
        if not j.has_parents(j1, j2):
            break
        pt1, pt2 = j1.pt(), j2.pt()
        if min(pt1, pt2) / (pt1 + pt2) > z_cut:
            break
        j = j1 if pt1 >= pt2 else j2
    return np.sort(np.array([c.user_index() for c in j.constituents()], dtype=np.int64))


def jet_features(p4: np.ndarray, z_cut: float = 0.1) -> np.ndarray:
    """The 16 features (order ``FEATURE_NAMES``) of one jet from its constituents [n, 4]."""
    p4 = _as_four_vectors(p4)
    pt, _, _ = kinematics(p4)
    z = pt / pt.sum()
    z = z[z > 0]
    zlogz = float(np.sum(z * np.log(z)))
    groomed = p4[mmdt_groom(p4, z_cut)]
    r = ecf_ratios(groomed)
    r["zlogz"] = zlogz
    r["mass_mmdt"] = invariant_mass(groomed)
    r["multiplicity"] = float(p4.shape[0])
    return np.array([r[name] for name in FEATURE_NAMES], dtype=np.float64)
