"""catkin's Python setup: exposes src/groot_ros and every subpackage in the workspace's devel and install spaces,
with the Kuavo message definitions groot_ros ships (ros/kuavo_definitions) as package data."""
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import find_packages, setup

setup(**generate_distutils_setup(packages=find_packages("src"), package_dir={"": "src"},
                                 package_data={"groot_ros.ros": ["kuavo_definitions/*/*/*/*"]}))
