"""Generated protobuf and gRPC stubs for package childreg.v1 (do not edit; `make proto`)."""
