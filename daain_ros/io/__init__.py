"""Frames in and out without torch: images, the sensor_msgs image codec, data sources, rosbag2 and labels."""
