"""Events: one bus (in process, or Redis pub/sub when REDIS_URL is set) fed after commits."""
