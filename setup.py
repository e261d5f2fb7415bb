# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""ament_python package: installs the Python package, launch files, config and the package index entry."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "daain_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["demo/default/*.safetensors", "demo/default/*.json", "demo/default/detector/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="daain_ros maintainers",
    maintainer_email="daain-ros@example.com",
    description="DAAIN anomaly and adversarial-input detector for ESPNet segmentation, as a ROS 2 node",
    license="MIT",
    # colcon reads this to run the tests with pytest (setuptools ignores tests_require)
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "detector_node = daain_ros.ros.node:main",
            "daain = daain_ros.cli.main:main",
        ],
    },
)
