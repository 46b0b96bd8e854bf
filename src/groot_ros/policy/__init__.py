"""The model side: checkpoint inspection, local assets, attention choice, and the engines that turn an
Observation into a de-normalized chunk (base.py is the interface the node and the tools call). No rospy."""
