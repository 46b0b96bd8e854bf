"""groot_ros: a fine-tuned GR00T N1.5 policy on the Leju Kuavo humanoid."""

__version__ = "0.1.0"
