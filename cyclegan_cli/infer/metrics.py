"""Distribution metrics on feature vectors: FID, KID, precision/recall and memorisation.

Each follows its reference formula, in float64:

- FID (Heusel et al. 2017): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), the matrix square
  root by scipy.
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, mean
  and standard deviation over ``subsets`` random subsets of min(1000, n) samples of each set.
- Precision / recall (Kynkaenniemi et al. 2019), k = 3: each real sample's k-NN ball (radius: the
  distance to its k-th nearest other real sample); precision is the share of generated samples
  inside some real ball, recall the share of real samples inside some generated ball.
- Memorisation: each generated sample's nearest training sample, against the same distance from
  held-out real samples: a model that copies its training set sits far below the held-out figures.
"""

from __future__ import annotations

import numpy as np

from cyclegan_cli.errors import UsageError

MIN_SAMPLES = {"fid": 2, "kid": 2, "pr": 4, "memorisation": 1}  # pr: k + 1 with k = 3


def check_counts(metrics: list[str], n_real: int, n_fake: int) -> None:
    for m in metrics:
        need = MIN_SAMPLES[m]
        if min(n_real, n_fake) < need:
            raise UsageError(f"{m} needs at least {need} images in each set; got {n_real} real and {n_fake} generated")


def fid(real: np.ndarray, fake: np.ndarray, on_notice=None) -> float:
    """The Fréchet distance of two feature sets. A (nearly) singular covariance product, as with fewer
    images than feature dimensions, is said once through ``on_notice`` (SciPy would warn with its
    own source path)."""
    import warnings

    from scipy import linalg

    real, fake = real.astype(np.float64), fake.astype(np.float64)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():  # singular product: offset the diagonals (as pytorch-fid does)
            offset = np.eye(s1.shape[0]) * 1e-6
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if on_notice is not None and any(issubclass(w.category, linalg.LinAlgWarning) for w in caught):
        on_notice(f"FID: the feature covariances are singular or nearly so ({len(real)} and {len(fake)} images, "
                  f"{real.shape[1]} features; fewer images than features, or features that never change): "
                  "the figure may be inaccurate")
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m = x.shape[0]
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def kid_subsets(n_real: int, n_fake: int, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """The random subsets KID averages over: [(real indices, fake indices)], reproducible by seed."""
    m = min(subset_size, n_real, n_fake)
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_real, m, replace=False), rng.choice(n_fake, m, replace=False)) for _ in range(subsets)]


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    values = [_mmd2_unbiased(real[i], fake[j]) for i, j in kid_subsets(len(real), len(fake), subsets, subset_size, seed)]
    return float(np.mean(values)), float(np.std(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), in blocks of rows to bound memory."""
    out = np.empty((len(a), len(b)), np.float64)
    bb = (b * b).sum(1)
    for s in range(0, len(a), 1024):
        x = a[s:s + 1024]
        d2 = (x * x).sum(1)[:, None] + bb[None, :] - 2 * x @ b.T
        out[s:s + 1024] = np.sqrt(np.maximum(d2, 0))
    return out


def knn_radii(x: np.ndarray, k: int = 3) -> np.ndarray:
    d = _pairwise(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]  # distance to the k-th nearest other sample


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d = _pairwise(fake, real)  # (n_fake, n_real)
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return precision, recall


def nearest(queries: np.ndarray, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest bank row, its distance) for each query."""
    d = _pairwise(queries.astype(np.float64), bank.astype(np.float64))
    idx = d.argmin(1)
    return idx, d[np.arange(len(queries)), idx]


def summary(d: np.ndarray) -> dict:
    return {"min": float(d.min()), "p05": float(np.percentile(d, 5)), "median": float(np.median(d)),
            "mean": float(d.mean())}
