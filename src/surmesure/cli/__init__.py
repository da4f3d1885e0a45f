"""The ``surmesure`` command: one verb per job, a thin shell over the services."""
