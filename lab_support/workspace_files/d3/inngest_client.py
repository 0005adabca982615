"""The one Inngest client of my_worker (Decision 3).

``inngest.Inngest`` reads ``INNGEST_DEV`` (the dev server's URL) when this module is imported;
``is_production=False`` because a local dev server needs no signing key.
"""

import inngest

# BEGIN SOLUTION
inngest_client = inngest.Inngest(app_id="my-worker", is_production=False)
# END SOLUTION
