"""catkin's Python setup: exposes src/groot_ros in the workspace's devel and install spaces."""
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import setup

setup(**generate_distutils_setup(packages=["groot_ros"], package_dir={"": "src"}))
