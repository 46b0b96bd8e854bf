"""Inference benchmark for GR00T N1.5: stock LeRobot path vs groot_ros's optimized path, per stage."""
