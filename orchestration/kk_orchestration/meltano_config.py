"""``meltano config print`` of several plugins in one process: one JSON object, plugin name -> its config.

    python -m kk_orchestration.meltano_config --environment dev tap-kahuna-logs tap-kaon-insights

The code location reads two plugins' settings each time it loads (``project.plugin_configs``). Two
``meltano`` processes cost two start-ups (about 1.1 s each, before every ``dagster job execute``); this
runs Meltano's own command line, ``meltano --environment <env> config print <plugin>``, once per plugin in
one process, so the settings are resolved exactly as that command resolves them (meltano.yml, the
environment, ``.env``, ``TAP_...`` variables, the system database), secrets masked as it masks them.
Run it from the project directory with the environment a meltano command would get.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from typing import Any


def config_print(environment: str, plugin: str) -> dict[str, Any]:
    """One plugin's ``meltano --environment <environment> config print <plugin>``, parsed."""
    from meltano.cli import cli  # the meltano command itself, run in this process

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main(["--environment", environment, "config", "print", plugin], prog_name="meltano", standalone_mode=False)
    return json.loads(printed.getvalue())


def main(arguments: list[str] | None = None) -> int:
    """Print ``{plugin: config}`` for every plugin named; on failure one line on stderr, exit status 1."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--environment", required=True, help="the Meltano environment (e.g. dev)")
    parser.add_argument("plugins", nargs="+", help="plugin names, e.g. tap-kahuna-logs")
    options = parser.parse_args(arguments)
    configs = {}
    for plugin in options.plugins:
        try:
            configs[plugin] = config_print(options.environment, plugin)
        except Exception as error:  # any failure of the command becomes its one line
            reason = " ".join(str(error).split()) or type(error).__name__
            print(reason, file=sys.stderr)  # Meltano's own message: it names the plugin or setting
            return 1
    print(json.dumps(configs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
