"""The web part: the REST API (``mtrobot.web.app.create_app``), the connection probe and the demo tenant.

Kept import-free so that ``python -m mtrobot.web.probe`` starts without loading the web stack.
"""
