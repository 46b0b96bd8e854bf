"""Offline tools: rosbag -> LeRobot conversion, dataset upkeep, evaluation on a dataset, training."""
