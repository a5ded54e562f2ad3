"""The weights file of a zoo entry: one safetensors file, checked before it is parsed.

`weights.safetensors` holds the state dict of each network the card lists (every network of
`model.modules()`, or those `model.sampling_modules()` names), each tensor
named `NET.PARAM` (e.g. `eps.blocks.0.weight`), floating-point tensors in the dtype chosen at
export (fp32, bf16 or fp16), integer buffers unchanged. Its header's metadata says
`format = genmodels-zoo` and the dtype.

Reading never unpickles anything: the file's bytes are read once, their sha256 is compared with
the card's *before* anything is parsed, the safetensors header (an 8-byte length and a JSON
table) is checked by hand, and only then are the tensors decoded by `safetensors` (which holds
raw numbers only, no code). Each tensor is cast to the dtype of the model's own entry when it is
loaded into a network.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import torch

from genmodels.errors import CheckpointError, ConfigError

FORMAT = "genmodels-zoo"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MAX_HEADER = 100_000_000        # safetensors' own limit on the JSON header


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of an export dtype name; ConfigError listing the choices."""
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; valid choices: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def flatten(modules: dict[str, torch.nn.Module], dtype: str) -> dict[str, torch.Tensor]:
    """{"NET.PARAM": tensor} of every network's state dict, floating-point tensors cast to `dtype`
    (ConfigError naming the tensor when a value does not fit in it, e.g. beyond fp16's range)."""
    target = check_dtype(dtype)
    out: dict[str, torch.Tensor] = {}
    for net, module in modules.items():
        if "." in net:
            raise ConfigError(f"network name {net!r} contains a '.', which the zoo's NET.PARAM names cannot hold")
        for key, value in module.state_dict().items():
            t = value.detach().to("cpu")
            if t.is_floating_point():
                cast = t.to(target)
                if not torch.isfinite(cast).all() and torch.isfinite(t).all():
                    raise ConfigError(f"{net}.{key} has values beyond the range of {dtype}; export as bf16 or fp32")
                t = cast
            out[f"{net}.{key}"] = t.contiguous().clone()   # own storage: safetensors refuses shared tensors
    return out


def encode(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors bytes of `tensors` with string `metadata` in the header."""
    from safetensors.torch import save  # lazy: safetensors, for weights files only

    return save(tensors, metadata={"format": FORMAT, **metadata})


def read_verified(path: Path, sha256: str) -> bytes:
    """The bytes of `path`, after checking that their sha256 is the card's `sha256`; CheckpointError
    naming the file when it is missing or its hash differs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no weights file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the weights ({e.strerror or e})") from None
    actual = sha256_hex(data)
    if not isinstance(sha256, str) or actual != sha256.lower():
        raise CheckpointError(f"{path}: sha256 mismatch: the file was changed or damaged (the card says "
                              f"{sha256}, the file hashes to {actual}); it was not loaded")
    return data


def header(data: bytes, path: Path) -> dict:
    """The JSON header of safetensors bytes; CheckpointError saying the file is not a safetensors
    file when the bytes do not start with one (a pickle, a zip, a truncated file...)."""
    def refuse(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a safetensors file ({why}); nothing in it was loaded or run")

    if len(data) < 8:
        raise refuse(f"{len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > MAX_HEADER or 8 + n > len(data):
        raise refuse(f"header length {n} does not fit a file of {len(data)} bytes")
    raw = data[8:8 + n]
    if raw[:1] != b"{":
        raise refuse("the header is not a JSON table")
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise refuse(f"the header is not valid JSON: {e}") from None
    if not isinstance(table, dict):
        raise refuse("the header is not a JSON table")
    return table


def decode(data: bytes, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of checked safetensors bytes; CheckpointError naming the file."""
    from safetensors import SafetensorError  # lazy: safetensors, for weights files only
    from safetensors.torch import load  # lazy: safetensors, for weights files only

    table = header(data, path)
    metadata = table.get("__metadata__") or {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a genmodels zoo entry's weights "
                              f"(no format = {FORMAT!r} in its metadata)")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a safetensors file ({e}); nothing in it was loaded") from None
    return tensors, metadata


def load_into(modules: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load `NET.PARAM` tensors into the networks `modules` (those of the model that the file should
    hold: all of them, or the sampling networks), each cast to the dtype of the model's entry;
    CheckpointError naming the file and the network for a missing, unexpected or misshapen tensor,
    and for a tensor of no network in `modules`."""
    nets = sorted(modules, key=len, reverse=True)   # the longest matching prefix names the network
    grouped: dict[str, dict[str, torch.Tensor]] = {net: {} for net in modules}
    stray = []
    for key, value in tensors.items():
        net = next((n for n in nets if key.startswith(n + ".")), None)
        if net is None:
            stray.append(key)
        else:
            grouped[net][key[len(net) + 1:]] = value
    if stray:
        raise CheckpointError(f"{path}: tensors {stray[:5]} belong to no network the entry holds (its networks: "
                              f"{', '.join(sorted(modules))})")
    for net, module in modules.items():
        own = module.state_dict()
        stored = grouped[net]
        missing = [k for k in own if k not in stored]
        unexpected = [k for k in stored if k not in own]
        if missing or unexpected:
            parts = (([f"missing {missing[:5]}"] if missing else [])
                     + ([f"unexpected {unexpected[:5]}"] if unexpected else []))
            raise CheckpointError(f"{path}: network {net!r} does not match the model: {'; '.join(parts)}")
        state = {}
        for k, target in own.items():
            t = stored[k]
            if tuple(t.shape) != tuple(target.shape):
                raise CheckpointError(f"{path}: network {net!r}: {k} has shape {tuple(t.shape)} in the file, "
                                      f"{tuple(target.shape)} in the model")
            if t.is_floating_point() != target.is_floating_point():
                raise CheckpointError(f"{path}: network {net!r}: {k} is {t.dtype} in the file, {target.dtype} "
                                      f"in the model")
            state[k] = t.to(dtype=target.dtype)
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: network {net!r} does not match the model: {e}") from None
