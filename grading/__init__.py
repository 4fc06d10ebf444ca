"""Checks of the practicals' student functions: the public checks a student runs on a
working copy (``python -m grading check``) and the hand-in (``python -m grading handin``);
``python -m grading --help`` lists every command there is.
"""
