"""The package version, in a module of its own so any layer can read it.

``qa/__init__.py`` is the Python API's front door and imports the service lazily;
modules below the service import the version from here, never from ``qa``.
"""

__version__ = "0.1.0"
