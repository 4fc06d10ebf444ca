"""Practical 3-c: domain adaptation with DANN (gradient reversal), MNIST -> MNIST-M."""
