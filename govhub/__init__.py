"""govhub: the composition root that assembles the platform (ops) and the domain packages."""

__version__ = "0.1.0"
