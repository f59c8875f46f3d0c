"""The ``governed-db`` command."""
