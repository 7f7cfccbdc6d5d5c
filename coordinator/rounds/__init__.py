"""Statistics rounds: how the coordinator asks the departments' nodes and collects answers."""
