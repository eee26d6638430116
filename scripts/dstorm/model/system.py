"""The Lightning system (network + loss + optimiser) and the data module that serves patch batches."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dstorm.errors import InputError
from dstorm.io import load_arrays
from dstorm.model.batches import PatchStore, normalization_stats
from dstorm.model.loss import deepstorm_loss, loss_kernel
from dstorm.architectures import DEFAULT_ARCHITECTURE
from dstorm.model.network import build_network

__all__ = ["TrainingDiverged", "DeepSTORMModule", "PatchDataModule"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded; no model is written."""


class DeepSTORMModule(L.LightningModule):
    """Deep-STORM training system: the network, the loss (heatmap MSE + L1) and Adam with
    ReduceLROnPlateau on the validation loss. Defaults are the official recipe's."""

    def __init__(
        self,
        *,
        architecture: str = DEFAULT_ARCHITECTURE,
        network: dict | None = None,
        upsampling_factor: int | None = None,
        learning_rate: float = 1e-3,
        lr_factor: float = 0.1,
        lr_patience: int = 5,
        min_lr: float = 5e-5,
        mse_weight: float = 1.0,
        l1_weight: float = 1.0,
        loss_sigma_px: float = 1.0,
        loss_kernel_scale: float = 2.0,
        channels_last: bool = True,
        max_loss_ratio: float = 1000.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network(architecture, network or {}, upsampling_factor)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.register_buffer("kernel", loss_kernel(loss_sigma_px, 7, loss_kernel_scale), persistent=False)
        self.reference_loss: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        return deepstorm_loss(
            self(x), y, self.kernel, mse_weight=self.hparams.mse_weight, l1_weight=self.hparams.l1_weight
        )

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"training loss became {value} at epoch {self.current_epoch}, step {batch_idx}: "
                "lower training.learning_rate or check the training set; no model was written"
            )
        if self.reference_loss is None:
            self.reference_loss = value
        elif value > self.hparams.max_loss_ratio * self.reference_loss:
            raise TrainingDiverged(
                f"training loss exploded to {value:.4g} ({value / self.reference_loss:.0f}× its first value "
                f"{self.reference_loss:.4g}, limit training.max_loss_ratio={self.hparams.max_loss_ratio:g}) at "
                f"epoch {self.current_epoch}, step {batch_idx}: lower training.learning_rate; no model was written"
            )
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=batch[0].shape[0])
        return loss

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.relu(self(x))

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.learning_rate)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.hparams.lr_factor, patience=self.hparams.lr_patience, min_lr=self.hparams.min_lr
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}}


class _Indices(Dataset):
    def __init__(self, index: np.ndarray):
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> int:
        return int(self.index[i])


class EpochBatchSampler(Sampler):
    """``steps`` batches of positions into the training indices per epoch, without replacement within an
    epoch (a new permutation whenever one is used up), drawn from ``(seed, epoch)`` so that a resumed run
    sees the same batches as an uninterrupted one."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int):
        self.n, self.batch_size, self.steps, self.seed, self.epoch = n, batch_size, steps, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        need = self.steps * self.batch_size
        order = np.concatenate([rng.permutation(self.n) for _ in range(-(-need // self.n))])[:need]
        yield from order.reshape(self.steps, self.batch_size).tolist()


class PatchDataModule(L.LightningDataModule):
    """Reads a simulate-stage patch file, splits it into training and validation patches with a seed, and
    computes the normalisation statistics on the training patches as the reference does.

    Batches leave the loader as patch indices; ``on_after_batch_transfer`` turns them into upsampled,
    normalised inputs and heatmap targets on the training device.
    """

    def __init__(
        self,
        patches_path: str,
        *,
        batch_size: int = 16,
        steps_per_epoch: int = 400,
        validation_fraction: float = 0.3,
        seed: int = 0,
        upsample_inputs: bool = True,
    ):
        super().__init__()
        self.patches_path = str(patches_path)
        self.batch_size = int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch)
        self.validation_fraction = float(validation_fraction)
        self.seed = int(seed)
        self.meta, arrays = load_arrays(self.patches_path)
        n = len(arrays["patches"])
        if n < 2:
            raise InputError(f"{self.patches_path}: {n} patch(es); training needs at least 2 (one for validation)")
        order = np.random.default_rng([self.seed, 1]).permutation(n)
        n_val = min(max(int(round(self.validation_fraction * n)), 1), n - 1)
        self.val_index, self.train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
        self.mean, self.std = normalization_stats(arrays["patches"][self.train_index])
        if not self.std > 0:
            raise InputError(f"{self.patches_path}: the training patches have no contrast (std 0)")
        self.store = PatchStore(arrays["patches"], arrays["offsets"], arrays["xy"], self.meta, self.mean, self.std,
                                upsample_inputs=upsample_inputs)  # fmt: skip
        self.sparse = {kind: {k.removeprefix(f"{kind}_"): arrays[k] for k in arrays if k.startswith(f"{kind}_")}
                       for kind in ("calibration", "precision")}  # fmt: skip

    def frames_set(self, kind: str) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """The patch file's ``kind`` frames (``calibration`` or ``precision``, see
        dstorm.simulation.simulate.sparse_frames) and the emitters inside each (camera pixels from its
        corner); None where the file has none."""
        c = self.sparse[kind]
        if not c:
            return None
        xy, off = c["xy"].astype(np.float64), c["offsets"]
        return c["frames"].astype(np.float32), [xy[off[k] : off[k + 1]] for k in range(len(c["frames"]))]

    def calibration_set(self) -> tuple[np.ndarray, list[np.ndarray], str]:
        """Raw frames, the emitters inside each (camera pixels from its corner) and what they are, for the
        threshold's calibration: the patch file's calibration frames (which look like the acquisitions),
        else the validation patches."""
        found = self.frames_set("calibration")
        if found is not None:
            return *found, "calibration frames"
        offsets, xy = self.store.offsets.cpu().numpy(), self.store.xy.cpu().numpy().astype(np.float64)
        p, truth = self.store.p, []
        for i in self.val_index:
            e = xy[offsets[i] : offsets[i + 1]]
            truth.append(e[(e >= 0).all(axis=1) & (e < p).all(axis=1)])
        return self.store.patches[torch.as_tensor(self.val_index).to(self.store.device)].cpu().numpy(), truth, "validation patches"

    def zero_prediction_loss(self, mse_weight: float = 1.0) -> float:
        """Validation loss of an all-zero prediction, ``mse_weight · mean(target²)``: the level a network
        that has learned nothing about positions sits at."""
        total = 0.0
        for start in range(0, len(self.val_index), 256):
            index = torch.as_tensor(self.val_index[start : start + 256])
            total += float((self.store.targets(index.to(self.store.device)) ** 2).mean(dim=(1, 2, 3)).sum())
        return mse_weight * total / len(self.val_index)

    def train_dataloader(self):
        sampler = EpochBatchSampler(len(self.train_index), self.batch_size, self.steps_per_epoch, self.seed)
        return DataLoader(_Indices(self.train_index), batch_sampler=sampler)

    def val_dataloader(self):
        return DataLoader(_Indices(self.val_index), batch_size=self.batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        self.store = self.store.to(batch.device)
        return self.store.batch(batch)
