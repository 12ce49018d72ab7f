"""`Idempotency-Key` on POSTs under `/api/v1`: a replay returns the first answer.

`middleware.py` is the HTTP edge, `service.py` the claim/replay logic, `repository.py` the
SQL on `idempotency_keys`, `sealing.py` keeps stored answers unreadable without the caller's
own credential and key.
"""
