"""The standalone export (app/scripts/export.py): valid Python for every tool a script can hold, the
parameters as arguments, secrets only as required arguments."""

from __future__ import annotations

import ast

from app.scripts.document import ScriptDoc, ScriptStep, Target
from app.scripts.export import export_python

NAME = Target("textbox", "Full name", fallbacks=("#name",))
FRAMED = Target("button", "Press", nth=1, equals=2, frame="f1", frames=("iframe#inner",))
SCRIPT = ScriptDoc(start_url="https://example.com/form", steps=[
    ScriptStep("input_text", {"text": "Ada"}, NAME),
    ScriptStep("input_text", {"text": "{{credential.password}}"}, Target("textbox", "Password")),
    ScriptStep("verification_code", {}, Target("textbox", "Code")),
    ScriptStep("select_option", {"option": "Large"}, Target("combobox", "Size")),
    ScriptStep("checkbox", {"checked": True}, Target("checkbox", "Insured")),
    ScriptStep("hover", {}, Target("navigation", "Main")),
    ScriptStep("click", {}, FRAMED),
    ScriptStep("upload_file", {"file_url": "file_1"}, Target("button", "Attach")),
    ScriptStep("download_file", {}, Target("link", "Report")),
    ScriptStep("keypress", {"keys": ["Enter", "Control+a"]}),
    ScriptStep("scroll", {"direction": "up"}),
    ScriptStep("goto_url", {"url": "https://example.com/other"}),
    ScriptStep("go_back", {}),
    ScriptStep("switch_tab", {"index": 1}),
], output={"ok": True})


def test_every_tool_exports_to_valid_python() -> None:
    source = export_python(SCRIPT, 'A "quoted" title')
    ast.parse(source)
    assert "NotImplementedError" not in source
    framed = "page.frame_locator('iframe#inner').get_by_role('button', name='Press', exact=True).nth(1)"
    assert framed in source
    assert "page.keyboard.press('Control+a')" in source


def test_parameters_are_arguments_and_secrets_have_no_default() -> None:
    source = export_python(SCRIPT, "t")
    run = next(node for node in ast.parse(source).body
               if isinstance(node, ast.FunctionDef) and node.name == "run")
    names = [arg.arg for arg in run.args.args]
    defaults = dict(zip(names[len(names) - len(run.args.defaults):],
                        [ast.literal_eval(d) for d in run.args.defaults], strict=True))
    assert names[0] == "page"
    assert defaults["url"] == "https://example.com/form" and defaults["full_name"] == "Ada"
    assert defaults["size"] == "Large"
    for required in ("credential_password", "verification_code", "upload_path"):
        assert required in names and required not in defaults
    assert "{{credential" not in source


def test_parameter_and_output_references_are_required_arguments() -> None:
    script = ScriptDoc(start_url=None, steps=[
        ScriptStep("input_text", {"text": "{{ name }}"}, NAME),
        ScriptStep("input_text", {"text": "Parcel for {{ name }}, {{ pick_output.city }}"},
                   Target("textbox", "Note")),
    ])
    source = export_python(script, "order")
    ast.parse(source)
    assert "def run(page: Page, name: str, pick_output_city: str)" in source  # an earlier block's output
    assert ".fill(name)" in source and ".fill('Parcel for ' + name + ', ' + pick_output_city)" in source
    assert "{{" not in source
