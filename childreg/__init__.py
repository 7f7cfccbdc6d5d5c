"""What every childreg party shares: code lists, models, errors, PKI, RPC plumbing, stubs."""
