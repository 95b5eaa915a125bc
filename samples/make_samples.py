"""Regenerate the bundled .npz data sets (seeded, so the files are reproducible).

    python samples/make_samples.py
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = np.random.default_rng(20261122)
    # least squares: y = X θ* + noise
    X = rng.normal(size=(50, 4))
    theta = rng.normal(size=4)
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=50)
    np.savez(HERE / "least_squares.npz", X=X, y=y, theta=theta)
    # logistic regression with labels in {-1, +1}
    X = rng.normal(size=(80, 3))
    y = np.where(X @ np.array([1.5, -1.0, 0.5]) + 0.3 * rng.normal(size=80) > 0, 1.0, -1.0)
    np.savez(HERE / "logistic.npz", X=X, y=y, w=0.1 * rng.normal(size=3), lam=np.array(0.01))
    # a 2-layer net: M examples, in → out, y: (M, out)
    X = rng.normal(size=(32, 5))
    Theta = 0.3 * rng.normal(size=(5, 2))
    y = np.tanh(X @ rng.normal(size=(5, 2)))
    np.savez(HERE / "net.npz", X=X, Theta=Theta, y=y)
    # matrix factorisation M ≈ U Vᵀ
    U0, V0 = rng.normal(size=(12, 3)), rng.normal(size=(10, 3))
    np.savez(HERE / "factorization.npz", M=U0 @ V0.T + 0.01 * rng.normal(size=(12, 10)),
             U=rng.normal(size=(12, 3)), V=rng.normal(size=(10, 3)))


if __name__ == "__main__":
    main()
