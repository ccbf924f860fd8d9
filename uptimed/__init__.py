"""uptimed: a small, exact uptime monitor that reports to Discord."""

__version__ = "0.1.0"
