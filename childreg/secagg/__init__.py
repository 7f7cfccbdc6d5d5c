"""Secure aggregation (docs/design/privacy.md, "Two stages", stage 2): departments mask their noisy
national-grid vectors with pairwise masks that cancel only in the sum, so the coordinator
learns the noisy national vector and never one department's table. Rounds are all-or-nothing
(Bonawitz et al. 2017 without dropout recovery); the signed federation roster and the masks
live in the modules of this package.
"""
