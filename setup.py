"""catkin's Python setup: exposes src/groot_ros and every subpackage in the workspace's devel and install spaces."""
from catkin_pkg.python_setup import generate_distutils_setup
from setuptools import find_packages, setup

setup(**generate_distutils_setup(packages=find_packages("src"), package_dir={"": "src"}))
