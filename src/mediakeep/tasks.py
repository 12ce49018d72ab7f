"""Every domain's task module, imported so their `@task`s register (composition layer).

Any process that runs or looks up jobs imports this module: `jobs.registry.load_tasks` imports
it by name, so the registry itself stays below the domains. A new task module is added here.
"""

import mediakeep.ai.tasks  # noqa: F401
import mediakeep.imageops.tasks  # noqa: F401
import mediakeep.jobs.tasks  # noqa: F401 - media.process
import mediakeep.streaming.tasks  # noqa: F401
import mediakeep.videoops.tasks  # noqa: F401
