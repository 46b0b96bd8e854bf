"""The thin ROS shell: the policy node, its parameters, subscribers, Kuavo message classes and command backends."""
