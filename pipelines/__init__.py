"""The KFP v2 pipeline of the platform. Importing this package imports only ``kfp``."""
