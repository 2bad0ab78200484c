"""Parameter references in a workflow block's script (app/scripts/parameters.py)."""

from __future__ import annotations

from app.scripts.document import ScriptDoc, ScriptStep
from app.scripts.parameters import References, outputs_by_path, with_references, with_values


def recorded() -> ScriptDoc:
    return ScriptDoc(start_url="http://127.0.0.1/order", steps=[
        ScriptStep("input_text", {"text": "Ada Lovelace"}, intent="input_text textbox 'Name' = Ada Lovelace"),
        ScriptStep("input_text", {"text": "{{credential.password}}"}),
        ScriptStep("input_text", {"text": "7"}),
    ], output={"greeting": "Thanks, Ada Lovelace!", "count": 7}, summary="Ordered for Ada Lovelace.")


def test_parameter_values_become_references_and_a_replay_types_the_new_ones() -> None:
    stored = with_references(recorded(), {"name": "Ada Lovelace", "first": "Ada", "count": 7, "n": "7"})
    assert stored.steps[0].args == {"text": "{{ name }}"}  # the longer value wins over "Ada"
    assert stored.steps[0].intent == "input_text textbox 'Name' = {{ name }}"
    assert stored.steps[1].args == {"text": "{{credential.password}}"}
    assert stored.steps[2].args == {"text": "7"}  # too short to be told from a coincidence
    assert stored.output == {"greeting": "Thanks, {{ name }}!", "count": 7}
    assert "Ada" not in repr(stored.to_json())

    replayed = with_values(stored, {"name": "Grace Hopper", "count": 9})
    assert replayed.steps[0].args == {"text": "Grace Hopper"}
    assert replayed.steps[1].args == {"text": "{{credential.password}}"}  # revealed only when typed
    assert replayed.output == {"greeting": "Thanks, Grace Hopper!", "count": 7}
    assert replayed.summary == "Ordered for Grace Hopper."


def test_an_earlier_blocks_output_is_referenced_by_the_path_of_each_value() -> None:
    output = {"name": "Ada Lovelace", "items": ["Large box", {"id": 7}], "odd key": "Ada Lovelace"}
    paths = outputs_by_path("pick_output", output)
    assert paths == {"pick_output.name": "Ada Lovelace", "pick_output.items.0": "Large box",
                     "pick_output.items.1.id": 7}  # a key that is not a plain name is left out
    assert outputs_by_path("note_output", "Grace") == {"note_output": "Grace"}
    stored = with_references(recorded(), paths)
    assert stored.steps[0].args == {"text": "{{ pick_output.name }}"}
    replayed = with_values(stored, outputs_by_path("pick_output", {"name": "Grace Hopper", "items": []}))
    assert replayed.steps[0].args == {"text": "Grace Hopper"}


def test_a_reference_this_run_has_no_value_for_is_named_and_other_braces_are_not() -> None:
    references = References(outputs_by_path("pick_output", None), frozenset({"pick_output", "name"}))
    replayed = with_values(ScriptDoc(start_url=None, steps=[
        ScriptStep("input_text", {"text": "{{ pick_output.name }} and {{ name }}"}),
        ScriptStep("input_text", {"text": "{{credential.password}} {{ other }} {{ pick_output.name }}"}),
    ]), references.values)
    assert [references.unfilled(step.args) for step in replayed.steps] == [
        ["{{ pick_output.name }}", "{{ name }}"], ["{{ pick_output.name }}"]]
    assert References().unfilled({"text": "{{ name }}"}) == []  # a task's script holds no references
