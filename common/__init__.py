"""Shared helpers for the four practicals: data, devices, seeding, plotting, command line."""
