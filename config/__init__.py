"""The default configuration, shipped inside the package and read with importlib.resources."""
