"""Student release and autograding for the four practicals.

``python -m grading release OUT``   writes the student version (stubs, no hidden checks)
``python -m grading check PRACT``   runs the public checks on this working copy
``python -m grading grade SUBS``    grades a folder of submissions
``python -m grading selftest``      proves every check passes on the reference and fails
                                    on the released stub and on known wrong versions
"""
