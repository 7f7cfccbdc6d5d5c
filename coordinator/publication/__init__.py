"""Publication: budgets, the release store and consistent post-processing of noisy tables."""
