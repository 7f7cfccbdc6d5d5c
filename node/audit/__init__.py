"""The node's access log, its checkpoints, and the audited service every front door calls."""
