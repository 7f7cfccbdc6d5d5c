"""The coordinator's gRPC front door for national statisticians (thin: proto <-> domain)."""
