"""CUT / FastCUT (Park et al., ECCV 2020): the patch projection head and the PatchNCE loss.

The generator is the ResNet generator of :mod:`cyclegan_cli.models.cyclegan` used as its own
encoder (:meth:`ResnetGenerator.encode`); the discriminator is the PatchGAN. What CUT adds is a
small MLP per encoder layer that projects sampled feature vectors (patches) to a unit sphere,
and a contrastive loss that asks each output patch to be closer to the input patch at the same
place than to the other sampled input patches (facts from taesungp/contrastive-unpaired-translation,
``models/networks.py`` PatchSampleF and ``models/patchnce.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cyclegan_cli.models.registry import register

NUM_PATCHES = 256  # official --num_patches
NCE_T = 0.07  # official --nce_T


@register("patch_nce_head")
class PatchNCEHead(nn.Module):
    """One MLP (Linear -> ReLU -> Linear, ``nc`` wide) per encoder layer, as the official
    ``mlp_sample``. ``channels``: each layer's feature channels (the official code creates the MLPs
    lazily on the first batch; here they are built from the channels, so a checkpoint rebuilds them)."""

    def __init__(self, channels=(3, 128, 256, 256, 256), nc=256):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int, patch_ids: list | None = None,
                generator: torch.Generator | None = None):
        """(projected patches per layer: (N * P, nc), unit length, fp32; the patch ids used per layer).
        The same ids are used for every image of the batch, and for the output image as for the
        input (pass the ids the input's call returned). New ids are drawn from ``generator`` (CPU).
        Runs in fp32 under autocast too, as the official code: PatchNCE's logits are these
        vectors' dot products over 0.07, which bf16 would round by up to 0.06."""
        out, ids = [], []
        for i, (feat, mlp) in enumerate(zip(feats, self.mlps)):
            n, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(n, h * w, c)  # (N, HW, C)
            if patch_ids is None:
                pid = torch.randperm(h * w, generator=generator)[: min(num_patches, h * w)].to(feat.device)
            else:
                pid = patch_ids[i]
            with torch.autocast(feat.device.type, enabled=False):
                x = mlp(flat[:, pid, :].reshape(-1, c).float())  # (N * P, nc)
                out.append(x / (x.norm(p=2, dim=1, keepdim=True) + 1e-7))
            ids.append(pid)
        return out, ids


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch: int, temperature: float = NCE_T) -> torch.Tensor:
    """PatchNCE per query patch, shape (N * P,). ``q``: output patches, ``k``: the input patches at
    the same places (no gradient flows into ``k``), both (N * P, D). The positive of each query is
    its own key; the negatives are the other keys of the same image. In fp32 under autocast too, as
    the official code."""
    with torch.autocast(q.device.type, enabled=False):
        q, k = q.float(), k.detach().float()
        d = q.shape[1]
        pos = (q * k).sum(dim=1, keepdim=True)  # (N*P, 1)
        qb, kb = q.view(batch, -1, d), k.view(batch, -1, d)
        neg = torch.bmm(qb, kb.transpose(1, 2))  # (N, P, P): each query against every key of its image
        p = neg.shape[1]
        eye = torch.eye(p, device=q.device, dtype=torch.bool)[None]
        neg = neg.masked_fill(eye, -10.0).view(-1, p)  # the positive is not also a negative
        logits = torch.cat([pos, neg], dim=1) / temperature
        return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=q.device),
                               reduction="none")
