"""The ROS-free core of the Kuavo stand-in (nodes/kuavo_loopback_sim): joint tracking, arm modes, a toy renderer."""
