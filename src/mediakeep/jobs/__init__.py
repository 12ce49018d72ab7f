"""Jobs: rows written with the change that needs them, task functions, and the dispatchers
(local worker processes fed from the jobs table, or Celery) that run them."""
