"""Fine-tuning: the trainer (rows, ranking losses, validation, checkpoints and the WiSE-FT mix,
trainer.py), the labelled-pair losses (losses.py), and training beside rank 0 under torchrun
(distributed.py)."""
