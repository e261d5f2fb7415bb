"""Everything that speaks ROS 2: the detector node, its health and debouncing, DDS settings, bag play and record.

The only subpackage that imports rclpy."""
