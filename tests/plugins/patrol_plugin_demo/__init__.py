"""A third-party plugin for Patrol: a check (``checks``) and a helpdesk adapter
(``desk``), registered by the entry points in the distribution's metadata."""
