"""Datasets, splits and augmentation for training and evaluation."""
