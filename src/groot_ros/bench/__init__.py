"""Benchmarks that print numbers: the policy (stock LeRobot vs ours), the node on the stand-in, the control step
in simulated time."""
