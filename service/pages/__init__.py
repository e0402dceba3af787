"""The pages people use: server-rendered Jinja2 templates over the same service layer,
with small vanilla scripts (`static/`) that call the JSON API. No front-end build.

`routes()` gives the page handlers and the static files; `template_config()` the
templates. `service.web.app` registers both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from service.pages import console, home, launch_console, shopper

STATIC = Path(__file__).parent / "static"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("service.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    env = _environment()
    return TemplateConfig(engine=JinjaTemplateEngine.from_environment(env))


def routes() -> list[Any]:
    return [
        *home.HANDLERS,
        *shopper.HANDLERS,
        *console.HANDLERS,
        *launch_console.HANDLERS,
        create_static_files_router(
            path="/static",
            directories=[STATIC],
            cache_control=CacheControlHeader(max_age=300, public=True),
            include_in_schema=False,
        ),
    ]
