"""Jet-tagging data like hls4ml's ``hls4ml_lhc_jets_hlf``: 16 high-level features, 5 classes.

This file is long because one generator holds the per-class process settings, the jet selection,
the parallel/cached generation and the shipped-sample loader together: they change together.

Events are generated with Pythia 8 (the ``pythia8mc`` wheel, module ``pythia8mc``) at
sqrt(s) = 13 TeV, clustered with fastjet (anti-kT, R = 0.8) and described by the 16 features of
:mod:`connas4ml_torch.datasets.jet_features`. One hard process per class, all with the
hard-process window ``950 < pTHat < 1100 GeV`` so that the tagged jets are boosted, at ~1 TeV:

* ``q`` (light quark): ``HardQCD:qg2qg``, ``qq2qq``, ``qqbar2qqbarNew``; the jet must match an
  outgoing u/d/s (anti)quark of the hard process;
* ``g`` (gluon): ``HardQCD:gg2gg`` and ``qqbar2gg``; the jet must match an outgoing gluon;
* ``W``: ``WeakBosonAndParton:qqbar2Wg`` and ``qg2Wq`` (a W recoiling against a jet), W decays to
  quarks only; the jet must match the W (its last copy before decay);
* ``Z``: ``WeakBosonAndParton:qqbar2gmZg`` and ``qg2gmZq`` with pure Z (``WeakZ0:gmZmode = 2``),
  Z decays to quarks only; the jet must match the Z;
* ``t``: ``Top:gg2ttbar`` and ``qqbar2ttbar``, W decays to quarks only (fully hadronic tops); the
  jet must match a top.

Selection per event: the visible final state (neutrinos dropped) is clustered; of the two leading
jets, the hardest one with ``800 < pT < 1200 GeV``, ``|eta| < 2.5`` and ``Delta R < 0.8`` to the
class's parton/boson is kept (at most one jet per event). Decay products are not required to be
contained in the jet (at 1 TeV a W/Z is nearly always contained, a top mostly).

Measured speed (one core of the 2-core development machine, otherwise idle; pythia8mc 8.317,
fastjet 3.5.2; generation + clustering + features, 40-jet runs): q 61, g 45, W 61, Z 66, t 34
events/s, i.e. 34-62 selected jets/s (nearly every event yields a jet; the top class is slowest
because of its larger, denser jets). Pythia's ``nextBatch`` (awkward arrays) avoids a per-particle
Python loop. ``n_jobs`` worker processes scale this almost linearly; each run also records
``events_per_cpu_second`` in ``JetData.meta``.

Reproducibility: the work is split in chunks of ``CHUNK_JETS`` jets per class, each with a
Pythia seed derived from ``(seed, class, chunk)`` by :class:`numpy.random.SeedSequence`, so the
same seed gives identical arrays whatever ``n_jobs`` is.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from connas4ml_torch.datasets.jet_features import FEATURE_NAMES, jet_features

CLASS_NAMES: tuple[str, ...] = ("q", "g", "W", "Z", "t")
CHUNK_JETS = 250
JET_R = 0.8
JET_PT_WINDOW = (800.0, 1200.0)
JET_ABS_ETA_MAX = 2.5
PT_HAT_WINDOW = (950.0, 1100.0)
SAMPLE_FILE = Path(__file__).resolve().parent / "data" / "jets_sample.npz"
SAMPLE_SEED = 0
SAMPLE_PER_CLASS = 5000

_COMMON = [
    "Beams:eCM = 13000.",
    f"PhaseSpace:pTHatMin = {PT_HAT_WINDOW[0]}",
    f"PhaseSpace:pTHatMax = {PT_HAT_WINDOW[1]}",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Print:quiet = on",
    "Random:setSeed = on",
]
_HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
_PROCESSES: dict[str, list[str]] = {
    "q": ["HardQCD:qg2qg = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on"],
    "g": ["HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"],
    "W": ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_HADRONIC_W],
    "Z": [
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
    ],
    "t": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_HADRONIC_W],
}
_NEUTRINOS = (12, 14, 16)


@dataclass
class JetData:
    """Jet features ``X`` float32 [N, 16], labels ``y`` int64 [N] indexing ``class_names``."""

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...] = FEATURE_NAMES
    class_names: tuple[str, ...] = CLASS_NAMES
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _chunk_seed(seed: int, cls: int, chunk: int) -> int:
    state = np.random.SeedSequence([seed, cls, chunk]).generate_state(1)[0]
    return int(state % 900_000_000) + 1


def _targets(ids: np.ndarray, status: np.ndarray, d1: np.ndarray, cls: str) -> np.ndarray:
    """Indices (in one event record) of the partons/bosons a jet of class ``cls`` must match."""
    aid = np.abs(ids)
    if cls == "q":
        return np.nonzero((status == -23) & (aid >= 1) & (aid <= 3))[0]
    if cls == "g":
        return np.nonzero((status == -23) & (aid == 21))[0]
    pdg = {"W": 24, "Z": 23, "t": 6}[cls]
    cand = np.nonzero(aid == pdg)[0]
    # the last copy: its first daughter is not the same particle again
    last = [i for i in cand if d1[i] > 0 and np.abs(ids[d1[i]]) != pdg]
    return np.asarray(last, dtype=np.int64)


def _delta_r(eta1: float, phi1: float, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    dphi = np.abs(phi1 - phi2)
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    return np.hypot(eta1 - eta2, dphi)


def _generate_chunk(task: tuple[int, int, int]) -> tuple[int, np.ndarray, int, float]:
    """Generate ``n_jets`` jets of class index ``cls`` with Pythia seed ``pseed``.

    Returns (cls, features [n_jets, 16], number of events generated, seconds).
    """
    import awkward as ak
    import fastjet as fj
    import pythia8mc

    cls, n_jets, pseed = task
    name = CLASS_NAMES[cls]
    t0 = time.perf_counter()
    pythia = pythia8mc.Pythia("", False)
    for s in [*_COMMON, f"Random:seed = {pseed}", *_PROCESSES[name]]:
        if not pythia.readString(s):
            raise RuntimeError(f"Pythia rejected setting {s!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise for class {name!r}")
    jet_def = fj.JetDefinition(fj.antikt_algorithm, JET_R)
    feats: list[np.ndarray] = []
    n_events = 0
    while len(feats) < n_jets:
        batch = pythia.nextBatch(50)
        prt = batch.prt
        counts = ak.to_numpy(ak.num(prt))
        ids = ak.to_numpy(ak.flatten(prt.id))
        status = ak.to_numpy(ak.flatten(prt.status))
        d1 = ak.to_numpy(ak.flatten(prt.daughter1))
        p = prt.p
        p4_all = np.column_stack(
            [ak.to_numpy(ak.flatten(p[c])) for c in ("px", "py", "pz", "e")]
        ).astype(np.float64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        for ev in range(len(counts)):
            n_events += 1
            sl = slice(offsets[ev], offsets[ev + 1])
            ev_ids, ev_st, ev_p4 = ids[sl], status[sl], p4_all[sl]
            tgt = _targets(ev_ids, ev_st, d1[sl], name)
            if tgt.size == 0:
                continue
            fin = (ev_st > 0) & ~np.isin(np.abs(ev_ids), _NEUTRINOS)
            fin &= np.hypot(ev_p4[:, 0], ev_p4[:, 1]) > 0
            vis = ev_p4[fin]
            parts = [fj.PseudoJet(*map(float, v)) for v in vis]
            for i, pj in enumerate(parts):
                pj.set_user_index(i)
            cs = fj.ClusterSequence(parts, jet_def)
            jets = fj.sorted_by_pt(cs.inclusive_jets(100.0))[:2]
            tp = ev_p4[tgt]
            t_pt = np.hypot(tp[:, 0], tp[:, 1])
            t_eta = np.arcsinh(tp[:, 2] / np.maximum(t_pt, 1e-9))
            t_phi = np.arctan2(tp[:, 1], tp[:, 0])
            for jet in jets:
                if not (JET_PT_WINDOW[0] < jet.pt() < JET_PT_WINDOW[1]):
                    continue
                if abs(jet.eta()) > JET_ABS_ETA_MAX:
                    continue
                if np.min(_delta_r(jet.eta(), jet.phi_std(), t_eta, t_phi)) >= JET_R:
                    continue
                idx = [c.user_index() for c in jet.constituents()]
                feats.append(jet_features(vis[idx]))
                break
            if len(feats) >= n_jets:
                break
    return cls, np.stack(feats).astype(np.float32), n_events, time.perf_counter() - t0


def generate_jets(
    n_per_class: int, seed: int = 0, n_jobs: int = 1, progress: bool = True
) -> JetData:
    """Generate ``n_per_class`` jets of each class (q, g, W, Z, t) with Pythia 8 + fastjet.

    Same ``seed`` gives identical arrays for any ``n_jobs``; ``n_jobs > 1`` uses processes.
    """
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer; got {n_per_class!r}")
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer; got {n_jobs!r}")
    from tqdm.auto import tqdm

    tasks = []
    for c in range(len(CLASS_NAMES)):
        for k, start in enumerate(range(0, n_per_class, CHUNK_JETS)):
            tasks.append((c, min(CHUNK_JETS, n_per_class - start), _chunk_seed(seed, c, k)))
    results: dict[tuple[int, int], np.ndarray] = {}
    events = np.zeros(len(CLASS_NAMES), dtype=np.int64)
    seconds = np.zeros(len(CLASS_NAMES))
    bar = tqdm(total=n_per_class * len(CLASS_NAMES), disable=not progress, unit="jet")
    t0 = time.perf_counter()
    pool = None
    try:
        if n_jobs == 1:
            it = map(_generate_chunk, tasks)
        else:
            import multiprocessing as mp

            # spawn: Pythia/fastjet state must not be inherited through fork
            pool = mp.get_context("spawn").Pool(min(n_jobs, len(tasks)))
            it = pool.imap(_generate_chunk, tasks)
        for task, (c, x, nev, sec) in zip(tasks, it):
            results[(c, task[2])] = x
            events[c] += nev
            seconds[c] += sec
            bar.update(x.shape[0])
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
    wall = time.perf_counter() - t0
    X = np.concatenate([results[(t[0], t[2])] for t in tasks])
    y = np.concatenate([np.full(t[1], t[0], dtype=np.int64) for t in tasks])
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    meta = {
        "seed": int(seed),
        "n_per_class": int(n_per_class),
        "pythia_version": f"{pythia.parm('Pythia:versionNumber'):.3f}",
        "settings_common": list(_COMMON),
        "processes": {k: list(v) for k, v in _PROCESSES.items()},
        "jet": f"anti-kT R={JET_R}, {JET_PT_WINDOW[0]}<pT<{JET_PT_WINDOW[1]} GeV, "
        f"|eta|<{JET_ABS_ETA_MAX}, matched dR<{JET_R}, mMDT z_cut=0.1 beta=0",
        "events_per_class": events.tolist(),
        "cpu_seconds_per_class": seconds.round(2).tolist(),
        "events_per_cpu_second": (events / np.maximum(seconds, 1e-9)).round(1).tolist(),
        "wall_seconds": round(wall, 2),
        "n_jobs": int(n_jobs),
    }
    return JetData(X=X, y=y, meta=meta)


def _cache_dir(cache_dir: str | os.PathLike | None, sub: str) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("CONNAS4ML_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "connas4ml_torch"
    return base / sub


def save_jets(data: JetData, path: str | os.PathLike, float16: bool = False) -> None:
    """Write ``data`` to a compressed ``.npz`` (meta stored as a JSON string)."""
    import json

    X = data.X.astype(np.float16 if float16 else np.float32)
    np.savez_compressed(
        path,
        X=X,
        y=data.y.astype(np.int8),
        feature_names=np.array(data.feature_names),
        class_names=np.array(data.class_names),
        meta=np.array(json.dumps(data.meta)),
    )


def read_jets(path: str | os.PathLike) -> JetData:
    """Read a file written by :func:`save_jets`."""
    import json

    with np.load(path, allow_pickle=False) as f:
        return JetData(
            X=f["X"].astype(np.float32),
            y=f["y"].astype(np.int64),
            feature_names=tuple(str(s) for s in f["feature_names"]),
            class_names=tuple(str(s) for s in f["class_names"]),
            meta=json.loads(str(f["meta"])),
        )


def _take_per_class(data: JetData, n_per_class: int) -> JetData:
    idx = np.concatenate(
        [np.nonzero(data.y == c)[0][:n_per_class] for c in range(len(data.class_names))]
    )
    return JetData(data.X[idx], data.y[idx], data.feature_names, data.class_names, dict(data.meta))


def load_jets(
    n_per_class: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> JetData:
    """Jets: the shipped sample, a prefix of it, or a generated set cached on disk.

    ``n_per_class=None`` returns the whole shipped sample (seed ``SAMPLE_SEED`` = 0). Because
    chunk seeds do not depend on ``n_per_class``, ``generate_jets(n, s)`` is exactly the first
    ``n`` jets per class of ``generate_jets(N, s)`` for ``n <= N``; so with ``seed == SAMPLE_SEED``
    and ``n_per_class`` within the sample the sample's prefix is returned. Otherwise the set is
    read from / written to ``cache_dir`` (default ``$CONNAS4ML_CACHE/jets`` or
    ``~/.cache/connas4ml_torch/jets``) as ``jets_n{n_per_class}_s{seed}.npz``.
    """
    if n_per_class is None:
        return read_jets(SAMPLE_FILE)
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer or None; got {n_per_class!r}")
    if seed == SAMPLE_SEED and SAMPLE_FILE.is_file():
        sample = read_jets(SAMPLE_FILE)
        if n_per_class <= int(np.bincount(sample.y).min()):
            return _take_per_class(sample, n_per_class)
    directory = _cache_dir(cache_dir, "jets")
    path = directory / f"jets_n{n_per_class}_s{seed}.npz"
    if path.is_file():
        return read_jets(path)
    data = generate_jets(n_per_class, seed=seed, n_jobs=n_jobs, progress=progress)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    save_jets(data, tmp)
    os.replace(tmp, path)
    return data


def train_val_test_split(
    data: JetData, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> tuple[JetData, JetData, JetData]:
    """Shuffle and split into (train, val, test), stratified by class."""
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1; got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(data.y):
        idx = rng.permutation(np.nonzero(data.y == c)[0])
        cuts = np.round(np.cumsum(fr)[:2] * idx.size).astype(int)
        for k, sub in enumerate(np.split(idx, cuts)):
            parts[k].append(sub)
    out = []
    for p in parts:
        idx = rng.permutation(np.concatenate(p))
        out.append(
            JetData(data.X[idx], data.y[idx], data.feature_names, data.class_names, dict(data.meta))
        )
    return out[0], out[1], out[2]


def standardize(
    train: np.ndarray, *others: np.ndarray, eps: float = 1e-8
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Fit mean/std on ``train`` and apply to it and ``others``: ``([train, *others], mean, std)``."""
    train = np.asarray(train)
    if train.ndim != 2:
        raise ValueError(f"train must be 2-D [N, features]; got shape {train.shape}")
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std < eps, 1.0, std)
    out = []
    for a in (train, *others):
        a = np.asarray(a)
        if a.ndim != 2 or a.shape[1] != train.shape[1]:
            raise ValueError(f"arrays must have shape [N, {train.shape[1]}]; got {a.shape}")
        out.append(((a - mean) / std).astype(np.float32))
    return out, mean.astype(np.float32), std.astype(np.float32)


def make_sample(
    path: str | os.PathLike = SAMPLE_FILE,
    n_per_class: int = SAMPLE_PER_CLASS,
    seed: int = SAMPLE_SEED,
    n_jobs: int = 2,
    float16: bool = False,
) -> JetData:
    """Regenerate the shipped sample ``datasets/data/jets_sample.npz``."""
    data = generate_jets(n_per_class, seed=seed, n_jobs=n_jobs, progress=True)
    data.meta["storage"] = "float16" if float16 else "float32"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_jets(data, path, float16=float16)
    return data


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m connas4ml_torch.datasets.jets --make-sample [--n-per-class N] [--jobs J]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make-sample", action="store_true", help="regenerate the shipped sample")
    ap.add_argument("--out", default=str(SAMPLE_FILE))
    ap.add_argument("--n-per-class", type=int, default=SAMPLE_PER_CLASS)
    ap.add_argument("--seed", type=int, default=SAMPLE_SEED)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--float16", action="store_true")
    args = ap.parse_args(argv)
    if not args.make_sample:
        ap.error("nothing to do: pass --make-sample")
    data = make_sample(args.out, args.n_per_class, args.seed, args.jobs, args.float16)
    print({k: v for k, v in data.meta.items() if k not in ("processes", "settings_common")})


if __name__ == "__main__":
    main()
