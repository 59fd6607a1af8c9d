"""An example application with the scheduler embedded: recurring searches, exports and
delayed analyses created at run time from the templates in ``jobs.d/``."""
