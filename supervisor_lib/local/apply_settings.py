"""``python -m supervisor_lib.local.apply_settings [FILE]``: apply ``airflow_settings.yaml`` to the metadata DB."""

from __future__ import annotations

import sys

from supervisor_lib.local.settings import SettingsError, apply_settings, load_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "airflow_settings.yaml"
    try:
        settings = load_settings(path)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = apply_settings(settings)
    print(f"applied {path}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
