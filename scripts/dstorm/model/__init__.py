"""The Deep-STORM network, its loss, batches built on the device, the Lightning system and model files.

This subpackage (and only it, with dstorm.training and reconstruction) imports torch and Lightning.
"""
