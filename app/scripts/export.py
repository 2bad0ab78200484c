"""A script as a standalone Python file (`main.py`) that drives Playwright by itself, no Wayfarer needed.

`run(page, ...)` takes the script's parameters as arguments: the start URL and every typed value
(defaulting to what the recording typed), a workflow parameter's `{{ key }}` reference as the required
argument `key` (an earlier block's output `{{ pick_output.name }}` as `pick_output_name`), credential
placeholders and one-time codes (required: they are never written into a script), files to upload.
`python main.py --name Grace` runs it in a fresh Chromium
(`--chromium` or `CHROMIUM_PATH` names the executable; Playwright's own browser otherwise). Elements are
found as replay finds them first: role and accessible name (the position among equals when there were
several), inside the iframes they were in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.scripts.document import ScriptDoc, ScriptStep, Target
from app.scripts.parameters import REFERENCE

_PLACEHOLDER = re.compile(r"^\{\{\s*credential\.(\w+)\s*\}\}$")


@dataclass
class _Parameters:
    names: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)  # parameter key or output path -> argument

    def value(self, wanted: str, text: str) -> str:
        """The expression for a typed value: an argument defaulting to it, or, when it holds parameter
        references, the text with each one the parameter's (required) argument."""
        parts = REFERENCE.split(text)
        if len(parts) == 1:
            return self.add(wanted, text)
        for key in parts[1::2]:
            if key not in self.references:
                self.references[key] = self.add(key)
        pieces = [repr(part) if index % 2 == 0 else self.references[part]
                  for index, part in enumerate(parts) if part or index % 2]
        return " + ".join(pieces)

    def add(self, wanted: str, default: Any = ...) -> str:
        base = re.sub(r"\W+", "_", wanted.lower()).strip("_") or "value"
        base = f"p_{base}" if base[0].isdigit() or base in ("page", "run", "main") else base
        name, number = base, 2
        while name in self.names:
            name, number = f"{base}_{number}", number + 1
        self.names.append(name)
        if default is not ...:
            self.defaults[name] = default
        return name

    def signature(self) -> str:
        required = [f"{name}: str" for name in self.names if name not in self.defaults]
        optional = [f"{name}: str = {self.defaults[name]!r}" for name in self.names if name in self.defaults]
        return ", ".join(["page: Page", *required, *optional])


def export_python(script: ScriptDoc, title: str) -> str:
    params = _Parameters()
    body: list[str] = []
    if script.start_url:
        url = params.add("url", script.start_url)
        body.append(f"page.goto({url})")
    for number, step in enumerate(script.steps, 1):
        body.append(f"# step {number}: {step.intent or step.tool}")
        body.extend(_lines(step, params))
    body.append('return {"url": page.url, "title": page.title()}')
    code = "\n".join(f"    {line}" for line in body) or "    pass"
    return _TEMPLATE.format(title=title.replace('"""', "'''"), signature=params.signature(), body=code,
                            arguments="\n".join(_argument(name, params) for name in params.names))


def _lines(step: ScriptStep, params: _Parameters) -> list[str]:
    args, target = step.args, step.target
    element = _locator(target) if target else None
    tool = step.tool
    if tool == "click" and element:
        return [f"{element}.click()", "settle(page)"]
    if tool == "input_text" and element:
        text = str(args.get("text", ""))
        secret = _PLACEHOLDER.match(text)
        value = params.add(f"credential_{secret.group(1)}") if secret else params.value(
            target.name if target else "text", text)
        return [f"{element}.fill({value})"]
    if tool == "verification_code" and element:
        return [f"{element}.fill({params.add('verification_code')})"]
    if tool == "select_option" and element:
        option = params.value(target.name if target else "option", str(args.get("option", "")))
        return [f"select_option(page, {element}, {option})"]
    if tool == "checkbox" and element:
        return [f"{element}.set_checked({bool(args.get('checked'))!r})"]
    if tool == "hover" and element:
        return [f"{element}.hover()"]
    if tool == "upload_file" and element:
        return [f"{element}.set_input_files({params.add('upload_path')})"]
    if tool == "download_file" and element:
        return ["with page.expect_download() as download:", f"    {element}.click()",
                "download.value.save_as(download.value.suggested_filename)"]
    if tool == "keypress":
        return [f"page.keyboard.press({key!r})" for key in args.get("keys") or []]
    if tool == "scroll":
        sign = "-" if args.get("direction") == "up" else ""
        return [f"page.mouse.wheel(0, {sign}page.viewport_size['height'])"]
    if tool == "goto_url":
        return [f"page.goto({str(args.get('url'))!r})"]
    if tool == "go_back":
        return ["page.go_back()"]
    if tool == "switch_tab":
        return [f"page = page.context.pages[{int(args.get('index') or 0)}]", "page.bring_to_front()"]
    return [f"raise NotImplementedError({f'step {tool} cannot be exported'!r})"]


def _locator(target: Target) -> str:
    scope = "page" + "".join(f".frame_locator({frame!r})" for frame in target.frames)
    name = f", name={target.name!r}, exact=True" if target.name else ""
    found = f"{scope}.get_by_role({target.role!r}{name})"
    return f"{found}.nth({target.nth})" if target.equals > 1 else found


def _argument(name: str, params: _Parameters) -> str:
    default = f", default={params.defaults[name]!r}" if name in params.defaults else ", required=True"
    return f"    parser.add_argument('--{name.replace('_', '-')}', dest={name!r}{default})"


_TEMPLATE = '''"""{title}

Generated by Wayfarer from a recorded run: a standalone Playwright script (pip install playwright).
    python main.py [--chromium /usr/bin/chromium] [--headed] [--<parameter> VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from playwright.sync_api import Locator, Page, sync_playwright


def settle(page: Page) -> None:
    """Wait for what an action set off: a navigation's load, by the page's own signal."""
    page.wait_for_load_state("load")


def select_option(page: Page, element: Locator, option: str) -> None:
    """A native select by its label or value; a custom listbox by clicking its option."""
    if element.evaluate("e => e.tagName === 'SELECT'"):
        labels = element.evaluate("s => [...s.options].map(o => o.label.trim())")
        element.select_option(label=option) if option in labels else element.select_option(option)
        return
    element.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def run({signature}) -> Any:
{body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH"),
                        help="the Chromium executable (default: Playwright's own browser)")
    parser.add_argument("--headed", action="store_true")
{arguments}
    options = vars(parser.parse_args())
    chromium, headed = options.pop("chromium"), options.pop("headed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=not headed)
        try:
            page = browser.new_page()
            result = run(page, **options)
            print(json.dumps(result))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
'''
