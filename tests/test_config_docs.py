from pathlib import Path

from mediakeep.config_docs import render


def test_configuration_reference_is_in_step_with_settings() -> None:
    written = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    assert written == render(), "run: python -m mediakeep.config_docs > docs/configuration.md"
