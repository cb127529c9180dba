"""Django app: persistence, orchestration, commands and admin around the Django-free core (gridcore)."""
