"""Offline work on files: datasets, the synthetic world, training and evaluation."""
