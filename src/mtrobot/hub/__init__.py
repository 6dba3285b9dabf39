"""The central hub: configuration with safe defaults and hot reload, and the registry of running services.

- :mod:`mtrobot.hub.schemas` — the schemas, looked up by the first segment of a service name.
- :mod:`mtrobot.hub.store` — ``HubStore``: get, put, history and rollback over the ``central_hub`` bucket.
- :mod:`mtrobot.hub.client` — ``ConfigClient``: what every service uses to read and watch its config.
- :mod:`mtrobot.hub.registry` — ``ServiceRegistration``: the heartbeat entry of a running service.
- :mod:`mtrobot.hub.api` and :mod:`mtrobot.hub.server` — the HTTP API served by ``mtrobot hub``.
"""
