"""Command backends (Kuavo topics or kuavo-humanoid-sdk); config.py reads their settings without rospy."""
