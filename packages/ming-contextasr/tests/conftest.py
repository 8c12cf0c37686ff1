"""Shared test set-up: one torch thread (tiny models; two threads only contend on a loaded 2-core machine)."""

import torch

torch.set_num_threads(1)
