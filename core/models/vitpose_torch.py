"""ViTPose's network in torch, built from the checkpoints easy_ViTPose publishes (``vitpose-{s,b,l,h}-*.pth``).

torch is imported here, and this module only where a ``.pth`` runs (``--pose vitpose:ckpt.pth``); the crops
and the heatmap decoding are :mod:`rigcast.models.vitpose`'s, shared with the ONNX path.

The network, as easy_ViTPose's ``vit_models`` builds it (D embedding width, L blocks, H heads, J joints;
shapes for its 256x192 input)::

    image (B, 3, 256, 192)
    backbone.patch_embed.proj   Conv2d(3, D, 16, stride 16, padding 2)      → (B, D, 16, 12) → tokens (B, 192, D)
    + backbone.pos_embed[:, 1:] + backbone.pos_embed[:, :1]     (1, 193, D): the pretrained class token's
                                                                 slot is added to every patch's
    backbone.blocks.0..L-1      x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorm eps 1e-6, qkv with
                                bias, softmax(q k^T / sqrt(D / H)) v, mlp fc1 → GELU (erf) → fc2
    backbone.last_norm          LayerNorm eps 1e-6 → (B, D, 16, 12)
    keypoint_head, classic      deconv_layers.{0,3}: ConvTranspose2d(·, 256, 4, stride 2, padding 1, no bias),
                                each followed by BatchNorm2d (.{1,4}, eps 1e-5) and ReLU → (B, 256, 64, 48);
                                final_layer: Conv2d(256, J, 1) → (B, J, 64, 48)
    keypoint_head, simple       ReLU, bilinear x4 (align_corners False), final_layer: Conv2d(D, J, 3, padding 1)

Every size easy_ViTPose publishes uses the classic head (its ``ViTPose_common`` configs); the simple head is
ViTPose's ``*_simple_*`` configs' (easy_ViTPose ships them for training only).  The sizes:

    ====  ====  ==  ==  ===================
    size  D     L   H   published files
    ====  ====  ==  ==  ===================
    s      384  12  12  vitpose-s-<dataset>
    b      768  12  12  vitpose-b-<dataset>
    l     1024  24  16  vitpose-l-<dataset>
    h     1280  32  16  vitpose-h-<dataset>
    ====  ====  ==  ==  ===================

D, L, the MLP width, J and the head are read from the weights' shapes; H is not stored anywhere (qkv is
(3D, D) for any H), so it is looked up by D in ``HEADS_BY_WIDTH``.  The input size follows from
``pos_embed``: patches come 16 px apart on a 3:4 (width:height) grid, 16 x 12 for 256x192.

A checkpoint is ``{"state_dict": {...}, "meta": ...}`` (what ViTPose's training saves, and what easy_ViTPose's
``model_split.py`` writes per dataset), or the bare state dict, keys as above (``module.`` prefixes, from
DataParallel, are dropped).  ViTPose++'s multi-expert checkpoints (``mlp.experts.*``, ``associate_keypoint_heads``)
must be split first, as easy_ViTPose's ``model_split.py`` does.  It is read by ``torch.load(weights_only=True)``
(:func:`rigcast.runners.torch.load_weights_only`), which runs no code from the file.

Legend: B boxes in a batch, J joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..runners import TensorSpec
from ..runners.torch import TorchRunner, load_weights_only, resolve_device
from .vitpose import HEATMAP_STRIDE

PATCH_SIZE = 16
PATCH_PADDING = 2  # easy_ViTPose's PatchEmbed: 4 + 2 * (ratio // 2 - 1) with ratio 1
LAYER_NORM_EPS = 1e-6
BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm2d's default, which the head keeps
SIZES = {"s": (384, 12, 12), "b": (768, 12, 12), "l": (1024, 24, 16), "h": (1280, 32, 16)}  # D, L, H
HEADS_BY_WIDTH = {width: heads for width, _, heads in SIZES.values()}
HEADS = ("classic", "simple")
INPUT_NAME, OUTPUT_NAME = "input_0", "output_0"  # easy_ViTPose's export.py names, so both paths read alike


@dataclass(frozen=True)
class VitPoseConfig:
    """One ViTPose network: ``embed_dim`` D, ``depth`` L, ``num_heads`` H, ``mlp_dim`` (4 D in every size),
    ``num_joints`` J, ``head`` ("classic" or "simple"), ``deconv_dims`` (the classic head's filters) and the
    ``grid_hw`` of patches (16, 12) → an input of 16 x grid px."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_dim: int
    num_joints: int
    head: str = "classic"
    deconv_dims: tuple[int, ...] = (256, 256)
    grid_hw: tuple[int, int] = (16, 12)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ModelError(f"ViTPose head must be one of {HEADS}, got {self.head!r}")
        if self.embed_dim % self.num_heads:
            raise ModelError(f"ViTPose width {self.embed_dim} does not split into {self.num_heads} heads")
        if min(self.depth, self.mlp_dim, self.num_joints, *self.grid_hw) < 1:
            raise ModelError(f"ViTPose depth, mlp width, joints and patch grid must be positive, got {self}")
        if self.head == "classic" and not self.deconv_dims:
            raise ModelError("a classic ViTPose head has deconvolution layers, got none")

    @property
    def size(self) -> str:
        """easy_ViTPose's size letter (s, b, l, h), or "custom"."""
        return next((name for name, (width, depth, _) in SIZES.items()
                     if (width, depth) == (self.embed_dim, self.depth)), "custom")

    @property
    def label(self) -> str:
        """"ViTPose-s", or for a custom depth "ViTPose (384 wide, 2 blocks)"."""
        return f"ViTPose-{self.size}" if self.size != "custom" else \
            f"ViTPose ({self.embed_dim} wide, {self.depth} blocks)"

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.grid_hw[0] * PATCH_SIZE, self.grid_hw[1] * PATCH_SIZE)

    @property
    def heatmap_hw(self) -> tuple[int, int]:
        return (self.input_hw[0] // HEATMAP_STRIDE, self.input_hw[1] // HEATMAP_STRIDE)

    @classmethod
    def from_state_dict(cls, state: dict) -> VitPoseConfig:
        """Read the network's shape from a state dict's (see :func:`state_dict_of`) tensor shapes; a key
        missing or a shape that does not fit gives one line naming what was expected and found."""
        def shape(key: str, ndim: int) -> tuple[int, ...]:
            if key not in state:
                raise ModelError(f"expected ViTPose key {key!r} (easy_ViTPose's layout), found "
                                 f"{_key_summary(state)}")
            found = tuple(getattr(state[key], "shape", ()))
            if len(found) != ndim:
                raise ModelError(f"expected ViTPose {key} of {ndim} dims, found {found}")
            return found

        if any(".mlp.experts." in k or k.startswith("associate_keypoint_heads.") for k in state):
            raise ModelError("expected a single-dataset ViTPose checkpoint, found ViTPose++ experts "
                             "(mlp.experts, associate_keypoint_heads): split it first, as easy_ViTPose's "
                             "model_split.py does")
        embed_dim, channels, ph, pw = shape("backbone.patch_embed.proj.weight", 4)
        if (channels, ph, pw) != (3, PATCH_SIZE, PATCH_SIZE):
            raise ModelError(f"expected ViTPose's patch embedding ({embed_dim}, 3, {PATCH_SIZE}, {PATCH_SIZE}), "
                             f"found {(embed_dim, channels, ph, pw)}")
        if embed_dim not in HEADS_BY_WIDTH:
            raise ModelError(f"expected a ViTPose width of {sorted(HEADS_BY_WIDTH)} (sizes s, b, l, h), "
                             f"found {embed_dim}")
        tokens = shape("backbone.pos_embed", 3)
        if tokens[0] != 1 or tokens[2] != embed_dim:
            raise ModelError(f"expected ViTPose pos_embed (1, patches + 1, {embed_dim}), found {tokens}")
        grid_hw = _grid_of(tokens[1] - 1)
        depth = 0
        while f"backbone.blocks.{depth}.attn.qkv.weight" in state:
            depth += 1
        if depth == 0:
            shape("backbone.blocks.0.attn.qkv.weight", 2)  # raises, naming the key
        for block in range(depth):
            qkv = shape(f"backbone.blocks.{block}.attn.qkv.weight", 2)
            if qkv != (3 * embed_dim, embed_dim):
                raise ModelError(f"expected ViTPose block {block} qkv ({3 * embed_dim}, {embed_dim}), found {qkv}")
        mlp_dim = shape("backbone.blocks.0.mlp.fc1.weight", 2)[0]
        prefix = "keypoint_head."
        if f"{prefix}deconv_layers.0.weight" in state:
            deconv_dims = []
            in_dim = embed_dim
            while f"{prefix}deconv_layers.{3 * len(deconv_dims)}.weight" in state:
                w = shape(f"{prefix}deconv_layers.{3 * len(deconv_dims)}.weight", 4)
                if w[0] != in_dim or w[2:] != (4, 4):
                    raise ModelError(f"expected ViTPose deconv layer {len(deconv_dims)} ({in_dim}, C, 4, 4), "
                                     f"found {w}")
                deconv_dims.append(w[1])
                in_dim = w[1]
            head, kernel, final_in = "classic", 1, in_dim
            if len(deconv_dims) != 2:  # two x2 upsamplings take the 1/16 grid to the 1/4 heatmap
                raise ModelError(f"expected a ViTPose head with 2 deconvolution layers, found {len(deconv_dims)}")
        else:
            head, kernel, final_in, deconv_dims = "simple", 3, embed_dim, ()
        final = shape(f"{prefix}final_layer.weight", 4)
        if final[1:] != (final_in, kernel, kernel):
            raise ModelError(f"expected the {head} ViTPose head's final_layer (J, {final_in}, {kernel}, {kernel}), "
                             f"found {final}")
        return cls(embed_dim=embed_dim, depth=depth, num_heads=HEADS_BY_WIDTH[embed_dim], mlp_dim=mlp_dim,
                   num_joints=final[0], head=head, deconv_dims=tuple(deconv_dims), grid_hw=grid_hw)


def _grid_of(patches: int) -> tuple[int, int]:
    """The (rows, cols) patch grid of a 3:4 (width:height) input with ``patches`` patches: 192 → (16, 12)."""
    cols = round((patches * 3 / 4) ** 0.5)
    rows = patches // cols if cols else 0
    if cols < 1 or rows * cols != patches or rows * 3 != cols * 4:
        raise ModelError(f"expected ViTPose's patches on a 3:4 grid (192 = 16 x 12 for 256x192 px), "
                         f"found {patches} patches")
    return rows, cols


def _key_summary(state: dict) -> str:
    keys = sorted(map(str, state))
    return f"{len(keys)} keys: {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"


def state_dict_of(checkpoint: object) -> dict:
    """A loaded checkpoint → its ViTPose state dict: ``checkpoint["state_dict"]`` or the checkpoint itself,
    ``module.`` prefixes dropped.  Anything else is a :class:`ModelError` naming what was found."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(k, str) for k in checkpoint):
        raise ModelError(f"expected a ViTPose checkpoint (a state dict, or a dict with 'state_dict'), "
                         f"found {type(checkpoint).__name__}")
    state = {k.removeprefix("module."): v for k, v in checkpoint.items()}
    if not any(k.startswith("backbone.") for k in state):
        raise ModelError(f"expected a ViTPose checkpoint (keys backbone.*, keypoint_head.*), found "
                         f"{_key_summary(state)}")
    return state


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # softmax(q k^T / sqrt(head dim)) v, torch's fused kernel (its default scale)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, config: VitPoseConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.embed_dim, eps=LAYER_NORM_EPS)
        self.attn = _Attention(config.embed_dim, config.num_heads)
        self.norm2 = nn.LayerNorm(config.embed_dim, eps=LAYER_NORM_EPS)
        self.mlp = _Mlp(config.embed_dim, config.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH_SIZE, stride=PATCH_SIZE, padding=PATCH_PADDING)


class _Backbone(nn.Module):
    def __init__(self, config: VitPoseConfig):
        super().__init__()
        self.patch_embed = _PatchEmbed(config.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.grid_hw[0] * config.grid_hw[1] + 1, config.embed_dim))
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.depth))
        self.last_norm = nn.LayerNorm(config.embed_dim, eps=LAYER_NORM_EPS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        grid = self.patch_embed.proj(image)  # (B, D, h, w)
        b, d, h, w = grid.shape
        x = grid.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        return self.last_norm(x).transpose(1, 2).reshape(b, d, h, w)


class _Head(nn.Module):
    def __init__(self, config: VitPoseConfig):
        super().__init__()
        self.simple = config.head == "simple"
        in_dim = config.embed_dim
        if not self.simple:
            layers: list[nn.Module] = []
            for dim in config.deconv_dims:
                layers += [nn.ConvTranspose2d(in_dim, dim, 4, stride=2, padding=1, bias=False),
                           nn.BatchNorm2d(dim, eps=BATCH_NORM_EPS), nn.ReLU()]
                in_dim = dim
            self.deconv_layers = nn.Sequential(*layers)
        kernel = 3 if self.simple else 1
        self.final_layer = nn.Conv2d(in_dim, config.num_joints, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.simple:
            x = F.interpolate(F.relu(x), scale_factor=4, mode="bilinear", align_corners=False)
        else:
            x = self.deconv_layers(x)
        return self.final_layer(x)


class VitPoseNet(nn.Module):
    """ViTPose: image (B, 3, h, w), normalised as :func:`rigcast.models.vitpose.crop_image` does → heatmaps
    (B, J, h/4, w/4).  Its parameters are named as easy_ViTPose's, so its state dict loads as published."""

    def __init__(self, config: VitPoseConfig):
        super().__init__()
        self.config = config
        self.backbone = _Backbone(config)
        self.keypoint_head = _Head(config)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.keypoint_head(self.backbone(image))

    @classmethod
    def from_state_dict(cls, state: dict) -> VitPoseNet:
        """Built to fit ``state`` (see :func:`state_dict_of`) and loaded from it, in eval mode.  Keys that
        the network lacks, or has and the state lacks, are named in one line."""
        state = state_dict_of(state)
        net = cls(VitPoseConfig.from_state_dict(state))
        expected = net.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(k for k in set(state) - set(expected) if not k.endswith("num_batches_tracked"))
        if missing or unexpected:
            raise ModelError(f"expected {net.config.label} keys, found {len(missing)} missing "
                             f"({', '.join(missing[:3])}) and {len(unexpected)} unexpected "
                             f"({', '.join(unexpected[:3])})")
        wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
                 if tuple(state[k].shape) != tuple(v.shape)]
        if wrong:
            key, found, want = wrong[0]
            raise ModelError(f"expected {net.config.label} {key} {want}, found {found} "
                             f"({len(wrong)} tensors differ)")
        net.load_state_dict({k: state[k] for k in expected}, strict=True)
        return net.eval()


def open_vitpose_checkpoint(path: str | Path, device: str = "auto", strict_device: bool = False) -> TorchRunner:
    """A ViTPose checkpoint ``path`` (``.pth``, as easy_ViTPose publishes it) as a runner with easy_ViTPose's
    ONNX tensors: ``input_0`` (B, 3, h, w) → ``output_0`` (B, J, h/4, w/4), B dynamic, on torch's ``device``
    ("auto": cuda when torch sees one)."""
    path = Path(path)
    device = resolve_device(device, strict_device, path.name)
    checkpoint = load_weights_only(path)
    try:
        net = VitPoseNet.from_state_dict(checkpoint)
    except ModelError as exc:
        raise ModelError(f"{path.name}: {exc}") from None
    config = net.config
    inputs = (TensorSpec(INPUT_NAME, (None, 3, *config.input_hw)),)
    outputs = (TensorSpec(OUTPUT_NAME, (None, config.num_joints, *config.heatmap_hw)),)
    return TorchRunner(path, inputs, outputs, module=net, device=device)
