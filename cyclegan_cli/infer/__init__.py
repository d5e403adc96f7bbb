"""Inference: batched translation of files and videos, sampling, latent walks and arithmetic."""
