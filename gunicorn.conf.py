"""gunicorn settings read from the repository root (``make run``, the Docker image and compose start gunicorn
there): command-line flags still win.

``limit_request_line``: gunicorn's default (4094 bytes) answers a longer request line with its own 414 HTML
page before Django sees it. At 8190 (gunicorn's maximum) an over-long object name, e.g. 5,000 characters in
``/api/objname/<name>``, reaches the API and gets its documented JSON 414 (``predictions.api``); only lines
beyond 8190 bytes still get gunicorn's page.
"""
limit_request_line = 8190
