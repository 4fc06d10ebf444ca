"""Practical 3-d: DCGAN (and conditional DCGAN) on MNIST."""
