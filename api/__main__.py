"""``python -m api``: serve the JSON API on ``API_HOST``:``API_PORT`` (default 127.0.0.1:8000).

Same app as ``uvicorn api.main:app --host … --port …``; this entry point reads the address from
the settings instead of the command line.
"""

from __future__ import annotations

import uvicorn

from dishlens.settings import exit_on_bad_setting, load_settings


def main() -> None:
    with exit_on_bad_setting("python -m api"):
        settings = load_settings()
    uvicorn.run("api.main:app", host=settings.api_host, port=settings.api_port)


if __name__ == "__main__":
    main()
