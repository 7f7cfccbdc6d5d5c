"""Secure aggregation (docs/design/privacy.md, "Two stages", stage 2): departments mask their noisy
national-grid vectors with a self mask and pairwise masks, so the coordinator learns the noisy
national vector and never one department's table. Rounds survive departments dropping out
(Bonawitz et al. 2017): Shamir shares of each round's mask key and self-mask seed let the
survivors remove what is needed, never both for one department. The signed federation roster,
the masks, the recovery protocol and the Shamir sharing live in the modules of this package.
"""
