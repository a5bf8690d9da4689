"""The embedded tenant: a SCIM 2.0 service provider persisted in SQLite.

Built on the third-party ``scim2-server`` core (protocol, filters, PATCH, ETags, discovery);
what is ours is the SQLite persistence, the constraints real tenants impose, and the CLI.
Its SCIM base is ``<server root>/v2``; in process, ``local:<path>`` serves it with no socket.
"""
