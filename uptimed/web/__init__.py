"""The public, HTML side of uptimed: the status page (``status.py`` its data, ``render.py`` how
it is shown, ``templates/`` and ``static/`` its files, served by ``api/status.py``)."""
