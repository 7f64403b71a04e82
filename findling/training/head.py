"""Projection heads: what turns a backbone's token vectors into the small vectors the index stores.

Two forms, both saved as PyLate ``Dense`` layers so any PyLate-based loader (the engine's included) reads them:

* ``linear``: one ``Dense`` ``width -> dim``.
* ``ffn`` (the default): two ``Dense`` layers with residual paths, ``width -> mid -> dim`` with a GELU in the
  middle and ``mid`` wider than the input, the form the mxbai-edge-colbert report and its companion study of
  projection variants found best. ``h = gelu(W1 x + b1) + R1 x``; ``y = W2 h + b2 + R2 h``.

``warm_start`` sets the head so it starts as a given linear map (a PCA, for instance): the residual paths carry
it and the new layers start small, so training begins at that map's quality rather than at noise.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

GELU = "torch.nn.modules.activation.GELU"
IDENTITY = "torch.nn.modules.linear.Identity"


class Head(nn.Module):
    def __init__(self, width: int, dim: int, *, kind: str = "ffn", mid: int | None = None) -> None:
        super().__init__()
        if kind not in ("ffn", "linear"):
            raise ValueError(f"unknown head kind {kind!r} (ffn or linear)")
        self.kind, self.width, self.dim = kind, width, dim
        self.mid = mid or 2 * width
        if kind == "linear":
            self.out = nn.Linear(width, dim)
        else:
            self.up = nn.Linear(width, self.mid)
            self.up_res = nn.Linear(width, self.mid, bias=False)
            self.out = nn.Linear(self.mid, dim)
            self.out_res = nn.Linear(self.mid, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            y = self.out(x)
        else:
            h = nn.functional.gelu(self.up(x)) + self.up_res(x)
            y = self.out(h) + self.out_res(h)
        return nn.functional.normalize(y, dim=-1)

    @torch.no_grad()
    def warm_start(self, weight: np.ndarray, bias: np.ndarray | None = None, *, scale: float = 0.02,
                   seed: int = 0) -> None:
        """Start as ``y = weight @ x + bias`` (``weight`` is ``[dim, width]``), plus small noise in new layers."""
        g = torch.Generator().manual_seed(seed)
        w = torch.as_tensor(weight, dtype=torch.float32)
        b = torch.zeros(self.dim) if bias is None else torch.as_tensor(bias, dtype=torch.float32)
        if self.kind == "linear":
            self.out.weight.copy_(w)
            self.out.bias.copy_(b)
            return
        self.up.weight.copy_(torch.randn(self.mid, self.width, generator=g) * scale)
        self.up.bias.zero_()
        self.up_res.weight.zero_()
        self.up_res.weight[: self.width, : self.width] = torch.eye(self.width)
        self.out.weight.copy_(torch.randn(self.dim, self.mid, generator=g) * scale)
        self.out.bias.copy_(b)
        self.out_res.weight.zero_()
        self.out_res.weight[:, : self.width] = w
        # the GELU part adds gelu(b1)=0 at start; the output bias absorbs the centring of the warm map

    def save_pylate(self, folder: Path) -> list[dict]:
        """Write the head as PyLate ``Dense`` folders (``1_Dense``, ``2_Dense``); returns the modules entries."""
        from pylate.models import Dense

        layers = []
        if self.kind == "linear":
            layers.append((self.out, None, IDENTITY))
        else:
            layers.append((self.up, self.up_res, GELU))
            layers.append((self.out, self.out_res, IDENTITY))
        modules = []
        for i, (linear, residual, activation) in enumerate(layers, start=1):
            path = folder / f"{i}_Dense"
            path.mkdir(parents=True, exist_ok=True)
            from sentence_transformers.util import import_from_string

            dense = Dense(linear.in_features, linear.out_features, bias=True,
                          activation_function=import_from_string(activation)(),
                          init_weight=linear.weight.detach().clone(), init_bias=linear.bias.detach().clone(),
                          use_residual=residual is not None)
            if residual is not None:
                dense.residual.weight.data.copy_(residual.weight.detach())
            dense.save(str(path), safe_serialization=True)
            modules.append({"idx": i, "name": str(i), "path": f"{i}_Dense", "type": "pylate.models.Dense.Dense"})
        return modules

    def save(self, path: Path) -> None:
        torch.save({"state": self.state_dict(), "kind": self.kind, "width": self.width, "dim": self.dim,
                    "mid": self.mid}, path)

    @classmethod
    def load(cls, path: Path) -> "Head":
        saved = torch.load(path, map_location="cpu", weights_only=True)
        head = cls(saved["width"], saved["dim"], kind=saved["kind"], mid=saved["mid"])
        head.load_state_dict(saved["state"])
        return head

    @torch.no_grad()
    def project(self, x: np.ndarray, *, batch: int = 65536) -> np.ndarray:
        """float32 outputs for cached backbone vectors (any leading shape), in batches to bound memory."""
        flat = np.asarray(x).reshape(-1, self.width)
        out = np.empty((len(flat), self.dim), dtype=np.float32)
        for start in range(0, len(flat), batch):
            out[start:start + batch] = self(torch.from_numpy(np.asarray(flat[start:start + batch], np.float32))).numpy()
        return out.reshape(*np.shape(x)[:-1], self.dim)


def pca_map(vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``dim`` principal directions (``[dim, width]``) of token vectors and the bias that centres them."""
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(0)
    cov = (x.T @ x) / len(x) - np.outer(mean, mean)
    values, vectors_ = np.linalg.eigh(cov)
    weight = vectors_[:, ::-1][:, :dim].T
    weight = weight * np.sign(weight[:, :1] + 1e-12)
    return weight.astype(np.float32), (-weight @ mean).astype(np.float32)


def sampled_pca(vectors: np.ndarray, dim: int, *, rows: int = 200_000, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """``pca_map`` over at most ``rows`` token vectors drawn with a fixed seed (in file order, for mmaps)."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(vectors), size=min(rows, len(vectors)), replace=False))
    return pca_map(np.asarray(vectors[picked]), dim)


def read_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def from_pylate(model_dir: Path) -> Head:
    """The head of a PyLate model folder (one linear ``Dense``, or two with residuals) as a trainable ``Head``."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    modules = json.loads((model_dir / "modules.json").read_text())
    dense = [m for m in modules if m.get("type", "").endswith("Dense")]
    layers = []
    for m in dense:
        folder = model_dir / m["path"]
        config = json.loads((folder / "config.json").read_text())
        weights = load_file(str(folder / "model.safetensors"))
        layers.append((config, weights))
    if len(layers) == 1 and layers[0][0]["activation_function"].endswith("Identity"):
        config, w = layers[0]
        head = Head(config["in_features"], config["out_features"], kind="linear")
        with torch.no_grad():
            head.out.weight.copy_(w["linear.weight"])
            head.out.bias.copy_(w.get("linear.bias", torch.zeros(config["out_features"])))
            if config.get("use_residual"):
                head.out.weight.add_(w.get("residual.weight", torch.eye(config["out_features"], config["in_features"])))
        return head
    if len(layers) == 2 and all(c.get("use_residual") for c, _ in layers) \
            and layers[0][0]["activation_function"] == GELU and layers[1][0]["activation_function"] == IDENTITY:
        (c1, w1), (c2, w2) = layers
        head = Head(c1["in_features"], c2["out_features"], kind="ffn", mid=c1["out_features"])
        with torch.no_grad():
            head.up.weight.copy_(w1["linear.weight"])
            head.up.bias.copy_(w1["linear.bias"])
            head.up_res.weight.copy_(w1["residual.weight"])
            head.out.weight.copy_(w2["linear.weight"])
            head.out.bias.copy_(w2["linear.bias"])
            head.out_res.weight.copy_(w2["residual.weight"])
        return head
    raise ValueError(f"{model_dir}: a head of {len(layers)} Dense layers in this form cannot be fine-tuned here "
                     "(supported: one linear Dense, or the two-layer residual GELU head)")
