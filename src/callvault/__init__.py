"""callvault: an open-source call recorder (SIPREC Session Recording Server)."""

__version__ = "0.1.0"
