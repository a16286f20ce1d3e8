"""Write the wire schema's JSON Schema files into ``patrol/contract/schemas/``.

The files are committed, so a reviewer sees a wire change as a diff, and a test
fails when the models and the published files disagree. Regenerate with
``python -m patrol.contract.publish_schema``.
"""

from __future__ import annotations

import json
from pathlib import Path

from patrol.contract.wire import SCHEMA_VERSION, json_schemas

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def rendered() -> dict[str, str]:
    """File name -> JSON text, exactly as published."""
    return {f"{name}-v{SCHEMA_VERSION}.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
            for name, schema in json_schemas().items()}


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (SCHEMA_DIR / name).write_text(text)
        print(SCHEMA_DIR / name)


if __name__ == "__main__":
    main()
