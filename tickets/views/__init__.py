"""Server-rendered screens, one module per screen; `urls.py` lists them."""
