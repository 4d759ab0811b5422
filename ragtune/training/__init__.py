"""Fine-tuning: the trainer (rows, the Trainer's arguments and callbacks, trainer.py), every loss
(losses/), hard-negative mining (negatives.py), validation and the WiSE-FT mix (validation.py), the forgetting guard (forgetting.py),
checkpoint integrity and resuming (checkpoints.py), the Trainer's callbacks (callbacks.py), and
training beside rank 0 under torchrun (distributed.py)."""
