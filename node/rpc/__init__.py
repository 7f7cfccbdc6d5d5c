"""The node's gRPC front door: servicers and protobuf conversion only (no business logic)."""
