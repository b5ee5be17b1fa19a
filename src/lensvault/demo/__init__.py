"""Self-contained pieces of the quickstart demo: a synthetic dataset and a tiny detector.

Nothing here depends on the vault: the demo must show LensVault on real files and a
real (if small) model, so these modules only use numpy, Pillow and pycocotools.
"""
