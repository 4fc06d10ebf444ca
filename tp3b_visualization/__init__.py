"""Practical 3-b: saliency maps, adversarial (fooling) images and class visualization."""
