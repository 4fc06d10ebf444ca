"""Practical 3-a: transfer learning with VGG16 features and linear SVMs on 15 Scene."""
