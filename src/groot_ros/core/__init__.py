"""The ROS-free core: the state/action layout, observations and their store, images, normalization, paths.

Plain Python and numpy only: no rospy, no torch (test_boundaries enforces it).
"""
