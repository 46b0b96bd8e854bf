"""The Kuavo stand-in: its ROS-free core and renderer, its rospy node, and a launcher for tools and tests."""
