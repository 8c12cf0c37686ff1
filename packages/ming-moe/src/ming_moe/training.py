"""A small causal-LM training loop with hybrid balancing, for the tiny preset on CPU (paper §2.1).

Each step: forward with labels (LM loss + ``router_aux_loss_coef`` × aux loss in training mode), backward, optimizer
step, then :class:`ming_moe.ExpertBiasUpdater`. The log keeps the LM loss and the expert-load imbalance (max / mean
over experts, averaged over MoE layers, of the text router) of every step, so balancing on and off can be compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .balancing import ExpertBiasUpdater, load_imbalance
from .modeling import BailingMoeV2ForCausalLM
from .moe import SparseMoeBlock


@dataclass
class TrainingLog:
    """Per-step records of :func:`train_causal_lm`.

    Attributes:
        lm_loss: language-modelling loss (without the aux term).
        imbalance: max/mean expert load of the text router, averaged over MoE layers.
        final_load: ``(layers, num_experts)`` loads of the text router summed over the last ``window`` steps.
    """

    lm_loss: list[float] = field(default_factory=list)
    imbalance: list[float] = field(default_factory=list)
    final_load: torch.Tensor | None = None


def random_windows(tokens: torch.Tensor, batch_size: int, length: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Endless ``(batch_size, length)`` batches of windows at random offsets of a 1D token tensor (a corpus).

    Deterministic per ``seed``; feeds :func:`train_causal_lm`.
    """
    if tokens.dim() != 1 or len(tokens) <= length:
        raise ValueError(f"tokens must be a 1D tensor longer than length={length}, got shape {tuple(tokens.shape)}")
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.arange(length)
    while True:
        starts = torch.randint(0, len(tokens) - length, (batch_size, 1), generator=generator)
        yield tokens[starts + offsets]


def train_causal_lm(
    model: BailingMoeV2ForCausalLM,
    batches: Iterator[torch.Tensor],
    steps: int,
    *,
    learning_rate: float = 3e-3,
    balance: bool = True,
    window: int = 20,
    progress: bool = True,
) -> TrainingLog:
    """Train ``model`` on ``steps`` batches of token ids with AdamW.

    Args:
        model: the model to train (put in training mode here).
        batches: yields ``(B, L)`` token-id tensors (labels are the inputs, shifted inside the loss).
        steps: number of optimizer steps.
        learning_rate: AdamW learning rate.
        balance: hybrid balancing on (aux loss with the config's coefficient + bias updates with the config's rate)
            or off (neither).
        window: how many final steps ``final_load`` sums.
        progress: show a tqdm progress bar.
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    model.train()
    if not balance:
        model.config.router_aux_loss_coef = 0.0
    updater = ExpertBiasUpdater(model, rate=None if balance else 0.0)
    blocks = [m for m in model.modules() if isinstance(m, SparseMoeBlock)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    log = TrainingLog()
    final_load = torch.zeros(len(blocks), model.config.num_experts)
    bar = tqdm(range(steps), disable=not progress, desc="train (balancing " + ("on)" if balance else "off)"))
    for step in bar:
        ids = next(batches)
        output = model(ids, labels=ids)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        text_loads = torch.stack([block.expert_load[0].clone() for block in blocks])
        if step >= steps - window:
            final_load += text_loads
        updater()  # bias update (rate 0 when balancing is off) and load reset
        lm_loss = (output.loss - model.config.router_aux_loss_coef * output.aux_loss).item()
        log.lm_loss.append(lm_loss)
        log.imbalance.append(sum(load_imbalance(load) for load in text_loads) / len(blocks))
        bar.set_postfix(loss=f"{lm_loss:.3f}", imbalance=f"{log.imbalance[-1]:.2f}")
    log.final_load = final_load
    return log
