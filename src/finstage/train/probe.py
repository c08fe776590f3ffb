"""How far the hand-off moves a model: the trained model vs the checkpoint the next stage gets.

For a QLoRA stage the next stage starts from the adapter merged into *unquantised* weights, not
from the 4-bit model that was trained. The gap between the two on a fixed probe set is the
quantisation/hand-off error the recipe's limitations section cannot exclude; recording it in the
checkpoint card makes it a number instead of a caveat.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from finstage.chat import Encoded, pad_batch
from finstage.train.images import BatchInputs


@torch.no_grad()
def _forward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
    out = model(**batch)
    return out.logits.float(), float(out.loss)


def handoff_gap(
    trained: torch.nn.Module,
    handed_off: torch.nn.Module,
    probe: Sequence[Encoded],
    pixels: BatchInputs,
    pad_id: int,
) -> dict[str, float]:
    """Mean |logit difference| over real tokens, and each model's loss, on the probe examples."""
    batch = pad_batch(list(probe), pad_id)
    batch = pixels(batch, [pid for e in probe for pid in e.images])
    device = next(trained.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    handed_off.to(device)
    trained.eval()
    handed_off.eval()
    a, loss_a = _forward(trained, batch)
    b, loss_b = _forward(handed_off, batch)
    mask = batch["attention_mask"].bool()
    return {
        "probe_examples": len(probe),
        "mean_abs_logit_diff": float((a - b).abs()[mask].mean()),
        "probe_loss_trained": loss_a,
        "probe_loss_handed_off": loss_b,
    }
