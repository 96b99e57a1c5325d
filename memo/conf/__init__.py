"""memo's Hydra config tree (YAML files), shipped as package data."""
